#!/usr/bin/env bash
# Start a single-node SLURM "cluster" on loopback for the end-to-end workflow test.
#
#   sudo tests/cluster/start_slurm.sh        # (we are root in the dev container)
#
# What it does (idempotent: safe to run again while everything is up):
#   1. installs the Debian packages slurm-wlm + munge with apt-get if they are missing;
#   2. writes /etc/slurm/{slurm.conf,gres.conf,cgroup.conf} for one node named
#      `hostname -s` at 127.0.0.1 with CPUs=<nproc>, RealMemory=<available MB - margin>
#      and ONE FAKE GPU (gres gpu:1 backed by /dev/null), no accounting database,
#      proctrack/linuxproc + task/none (no cgroups needed: works in a container);
#   3. starts munged, slurmctld, slurmd (as plain daemons, no systemd);
#   4. waits until `sinfo` reports the node idle.
#
# It refuses to overwrite a slurm.conf that it did not write itself (a real node),
# unless TS_SLURM_FORCE=1.
#
# Environment knobs (all optional):
#   TS_SLURM_CPUS        CPUs of the node             (default: nproc)
#   TS_SLURM_MEM_MARGIN  MB kept back from MemAvailable (default: 2048)
#   TS_SLURM_REALMEM     RealMemory of the node in MB (default: MemAvailable - margin,
#                        or the value of the previous start while it still fits)
#   TS_SLURM_GPUS        number of fake GPUs           (default: 1; 0 = no gres)
#   TS_SLURM_PARTITION   partition name                (default: debug)
#   TS_SLURM_MINJOBAGE   seconds finished jobs stay visible to squeue/scontrol
#                        (default: 3600; must be >= 3x --slurm-init-seconds-before-status-checks)
#   TS_SLURM_WAIT        seconds to wait for the node to become idle (default: 60)
#   TS_SLURM_FORCE=1     overwrite a foreign /etc/slurm/slurm.conf
set -euo pipefail
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin" # the daemons live in sbin

MARK="# managed-by: tunable_solids tests/cluster/start_slurm.sh"
CONF_DIR=/etc/slurm
LOG_DIR=/var/log/slurm
CTLD_SPOOL=/var/spool/slurmctld
SLURMD_SPOOL=/var/spool/slurmd
RUN_DIR=/run/slurm
CTLD_PID=$RUN_DIR/slurmctld.pid
SLURMD_PID=$RUN_DIR/slurmd.pid
MUNGE_PID=/run/munge/munged.pid

NODE=$(hostname -s)
CPUS=${TS_SLURM_CPUS:-$(nproc)}
MARGIN=${TS_SLURM_MEM_MARGIN:-2048}
GPUS=${TS_SLURM_GPUS:-1}
PARTITION=${TS_SLURM_PARTITION:-debug}
MINJOBAGE=${TS_SLURM_MINJOBAGE:-3600}
WAIT=${TS_SLURM_WAIT:-60}

say() { printf '[start_slurm] %s\n' "$*"; }
die() {
    printf '[start_slurm] ERROR: %s\n' "$*" >&2
    exit 1
}

# Print the tail of a log file to stderr (for error messages).
show_log() {
    if [ -f "$1" ]; then
        printf -- '--- last lines of %s ---\n' "$1" >&2
        tail -n 25 "$1" >&2
        printf -- '---\n' >&2
    fi
}

# True if the pid stored in file $1 is alive and its command name is $2.
pid_alive() {
    local pidfile=$1 name=$2 pid
    [ -f "$pidfile" ] || return 1
    pid=$(cat "$pidfile" 2>/dev/null) || return 1
    [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]
}

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and starts system daemons)"
[ -n "$NODE" ] || die "hostname -s is empty"

# ---------------------------------------------------------------- 1. packages
need_install=()
for bin in slurmctld:slurmctld slurmd:slurmd sinfo:slurm-client munged:munge; do
    command -v "${bin%%:*}" >/dev/null 2>&1 || need_install+=("${bin##*:}")
done
if [ ${#need_install[@]} -gt 0 ]; then
    say "installing slurm-wlm munge (missing: ${need_install[*]}) ..."
    export DEBIAN_FRONTEND=noninteractive
    # No init system runs here: keep the package scripts from trying to start the
    # daemons (we start them below). Only add a policy-rc.d if none exists.
    policy_added=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        policy_added=1
    fi
    trap '[ "$policy_added" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
    apt-get update -qq || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/tmp/ts_slurm_apt.log 2>&1 || {
        tail -n 30 /tmp/ts_slurm_apt.log >&2
        die "apt-get install slurm-wlm munge failed (full log: /tmp/ts_slurm_apt.log)"
    }
    if [ "$policy_added" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
    trap - EXIT
fi
for bin in slurmctld slurmd sinfo scontrol sbatch squeue munged; do
    command -v "$bin" >/dev/null 2>&1 || die "$bin not found after installation"
done
say "$(slurmctld -V)"

# ---------------------------------------------------------------- 2. config
# Memory: what slurmd would see as available, minus a margin for the OS and the
# Snakemake controller. slurmd drains a node whose RealMemory exceeds the real one.
avail_mb=$(awk '/^MemAvailable:/ {print int($2/1024)}' /proc/meminfo)
total_mb=$(awk '/^MemTotal:/ {print int($2/1024)}' /proc/meminfo)
REALMEM=$(((avail_mb - MARGIN) / 512 * 512))
# MemAvailable moves all the time (other test suites, page cache): keep the value of a
# previous start while it is below the machine's total minus the margin, so that a
# second start is a no-op instead of a daemon restart (running jobs would survive one,
# but there is no need).
if [ -f "$CONF_DIR/slurm.conf" ] && grep -qF "$MARK" "$CONF_DIR/slurm.conf"; then
    prev=$(sed -n 's/.*RealMemory=\([0-9][0-9]*\).*/\1/p' "$CONF_DIR/slurm.conf" | head -n1)
    if [ -n "$prev" ] && [ "$prev" -ge 512 ] && [ "$prev" -le $((total_mb - MARGIN)) ]; then
        REALMEM=$prev
    fi
fi
if [ -n "${TS_SLURM_REALMEM:-}" ]; then
    REALMEM=$TS_SLURM_REALMEM
fi
[ "$REALMEM" -ge 512 ] || die "only ${avail_mb} MB available, need at least $((MARGIN + 512)) MB"

mkdir -p "$CONF_DIR" "$LOG_DIR" "$CTLD_SPOOL" "$SLURMD_SPOOL" "$RUN_DIR"

if [ -f "$CONF_DIR/slurm.conf" ] && ! grep -qF "$MARK" "$CONF_DIR/slurm.conf" \
    && [ "${TS_SLURM_FORCE:-0}" != 1 ]; then
    die "$CONF_DIR/slurm.conf exists and was not written by this script; refusing to overwrite (set TS_SLURM_FORCE=1 to override, a backup is kept)"
fi

gres_node=""
gres_types=""
if [ "$GPUS" -gt 0 ]; then
    gres_node=" Gres=gpu:$GPUS"
    gres_types="GresTypes=gpu"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat >"$tmp/slurm.conf" <<EOF
$MARK
# Single-node test cluster on loopback. Regenerated on every start; edit the script.
ClusterName=tslocal
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
CryptoType=crypto/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$CTLD_SPOOL
SlurmdSpoolDir=$SLURMD_SPOOL
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# container friendly: no cgroups at all
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# no slurmdbd: sacct does not work, the workflow must use --slurm-status-command squeue
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
# (AccountingStorageTRES=gres/gpu would need slurmdbd; the GPU request of a job shows
#  up in "scontrol show job" as TresPerJob=gres:gpu:N / TresPerNode=... anyway)
MailProg=/bin/true
# keep finished jobs visible to squeue/scontrol for this long (seconds)
MinJobAge=$MINJOBAGE
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
$gres_types
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$REALMEM$gres_node State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF

{
    echo "$MARK"
    echo "AutoDetect=off"
    # one real character device per fake GPU; /dev/null is always there
    i=0
    while [ "$i" -lt "$GPUS" ]; do
        echo "NodeName=$NODE Name=gpu File=/dev/null"
        i=$((i + 1))
    done
} >"$tmp/gres.conf"

cat >"$tmp/cgroup.conf" <<EOF
$MARK
# Intentionally empty: proctrack/linuxproc and task/none use no cgroups, so this
# works inside a container. Present so no tool looks for one in vain.
EOF

changed=0
for f in slurm.conf gres.conf cgroup.conf; do
    if ! cmp -s "$tmp/$f" "$CONF_DIR/$f"; then
        if [ -f "$CONF_DIR/$f" ] && ! grep -qF "$MARK" "$CONF_DIR/$f"; then
            cp -p "$CONF_DIR/$f" "$CONF_DIR/$f.bak.$(date +%s)"
        fi
        install -m 0644 "$tmp/$f" "$CONF_DIR/$f"
        changed=1
        say "wrote $CONF_DIR/$f"
    fi
done
# Debian's tools look in /etc/slurm; nothing else to link.

# ---------------------------------------------------------------- 3. daemons
# munge: the package's postinst creates /etc/munge/munge.key; make one if not.
if [ ! -s /etc/munge/munge.key ]; then
    say "creating munge key"
    if command -v mungekey >/dev/null 2>&1; then
        mungekey --create --keyfile=/etc/munge/munge.key --force
    else
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
    fi
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
chmod 0755 /run/munge

if pid_alive "$MUNGE_PID" munged; then
    say "munged already running (pid $(cat "$MUNGE_PID"))"
else
    say "starting munged"
    rm -f "$MUNGE_PID" /run/munge/munge.socket.2
    runuser -u munge -- /usr/sbin/munged || {
        show_log /var/log/munge/munged.log
        die "munged failed to start"
    }
fi
for _ in $(seq 1 20); do
    munge -n </dev/null | unmunge >/dev/null 2>&1 && break
    sleep 0.5
done
munge -n </dev/null | unmunge >/dev/null 2>&1 || die "munge round trip (munge -n | unmunge) fails"

ctld_up=0
slurmd_up=0
pid_alive "$CTLD_PID" slurmctld && ctld_up=1
pid_alive "$SLURMD_PID" slurmd && slurmd_up=1

if [ "$changed" = 1 ] && { [ "$ctld_up" = 1 ] || [ "$slurmd_up" = 1 ]; }; then
    say "configuration changed: restarting slurmctld and slurmd"
    for pf in "$SLURMD_PID" "$CTLD_PID"; do
        if [ -f "$pf" ]; then
            kill "$(cat "$pf")" 2>/dev/null || true
        fi
    done
    for _ in $(seq 1 40); do
        pid_alive "$CTLD_PID" slurmctld || pid_alive "$SLURMD_PID" slurmd || break
        sleep 0.25
    done
    ctld_up=0
    slurmd_up=0
fi

if [ "$ctld_up" = 1 ]; then
    say "slurmctld already running (pid $(cat "$CTLD_PID"))"
else
    say "starting slurmctld"
    rm -f "$CTLD_PID"
    slurmctld || {
        show_log "$LOG_DIR/slurmctld.log"
        die "slurmctld failed to start"
    }
fi
for _ in $(seq 1 40); do
    scontrol ping 2>/dev/null | grep -q 'is UP' && break
    sleep 0.5
    pid_alive "$CTLD_PID" slurmctld || break # died (e.g. fatal config error)
done
scontrol ping 2>/dev/null | grep -q 'is UP' || {
    show_log "$LOG_DIR/slurmctld.log"
    die "slurmctld does not answer (scontrol ping)"
}

if [ "$slurmd_up" = 1 ]; then
    say "slurmd already running (pid $(cat "$SLURMD_PID"))"
else
    say "starting slurmd"
    rm -f "$SLURMD_PID"
    slurmd || {
        show_log "$LOG_DIR/slurmd.log"
        die "slurmd failed to start"
    }
fi

# ---------------------------------------------------------------- 4. wait for idle
state=""
for i in $(seq 1 $((WAIT * 2))); do
    state=$(sinfo -h -N -n "$NODE" -o '%T' 2>/dev/null | head -n1)
    case "$state" in
        idle | mixed | allocated | completing) break ;;
        down* | drain* | fail*)
            # e.g. after an unclean stop; the node is healthy if slurmd runs.
            if [ $((i % 4)) -eq 0 ]; then
                scontrol update NodeName="$NODE" State=RESUME 2>/dev/null || true
            fi
            ;;
    esac
    sleep 0.5
done
case "$state" in
    idle | mixed | allocated | completing) ;;
    *)
        sinfo -N -l >&2 || true
        scontrol show node "$NODE" 2>/dev/null | grep -E 'State|Reason' >&2 || true
        show_log "$LOG_DIR/slurmd.log"
        show_log "$LOG_DIR/slurmctld.log"
        die "node $NODE is '$state' after ${WAIT}s, not idle"
        ;;
esac

say "node $NODE is $state: CPUs=$CPUS RealMemory=${REALMEM}MB gpus=$GPUS partition=$PARTITION MinJobAge=${MINJOBAGE}s"
sinfo -o '%P %a %D %T %c %m %G %N'
