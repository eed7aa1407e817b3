#!/usr/bin/env bash
# Stop the single-node test SLURM started by tests/cluster/start_slurm.sh.
#
#   tests/cluster/stop_slurm.sh            # stop slurmd, slurmctld, munged
#   tests/cluster/stop_slurm.sh --purge    # ... and forget all jobs (spool state, logs)
#
# Only the daemons recorded in the pid files that start_slurm.sh configured are
# signalled (and only if the pid still belongs to that daemon). Packages and
# /etc/slurm stay; start_slurm.sh brings everything back.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

RUN_DIR=/run/slurm
purge=0
case "${1:-}" in
    --purge) purge=1 ;;
    "") ;;
    *)
        echo "usage: $0 [--purge]" >&2
        exit 2
        ;;
esac

say() { printf '[stop_slurm] %s\n' "$*"; }

[ "$(id -u)" -eq 0 ] || {
    echo "[stop_slurm] ERROR: must run as root" >&2
    exit 1
}

stop_daemon() {
    local name=$1 pidfile=$2 pid
    if [ ! -f "$pidfile" ]; then
        say "$name: not running (no $pidfile)"
        return 0
    fi
    pid=$(cat "$pidfile" 2>/dev/null || true)
    if [ -z "$pid" ] || [ ! -d "/proc/$pid" ] \
        || [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != "$name" ]; then
        say "$name: not running (stale $pidfile)"
        rm -f "$pidfile"
        return 0
    fi
    say "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do
        [ -d "/proc/$pid" ] || break
        sleep 0.25
    done
    if [ -d "/proc/$pid" ]; then
        say "$name did not exit after 10 s: sending SIGKILL to pid $pid"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
}

stop_daemon slurmd "$RUN_DIR/slurmd.pid"
stop_daemon slurmctld "$RUN_DIR/slurmctld.pid"
stop_daemon munged /run/munge/munged.pid

if [ "$purge" = 1 ]; then
    say "purging job state and logs"
    rm -rf /var/spool/slurmctld/* /var/spool/slurmd/* /var/log/slurm/*.log
fi
say "done"
