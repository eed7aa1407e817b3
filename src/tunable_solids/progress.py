"""Progress of a job's loop in its log: ``label i/n`` with elapsed time and an ETA."""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)


class Progress:
    """Logs ``label i/n`` with elapsed time and an ETA from the mean time per item."""

    def __init__(self, label: str, total: int):
        self.label, self.total, self.start, self.done = label, total, time.perf_counter(), 0

    def step(self, message: str) -> None:
        self.done += 1
        elapsed = time.perf_counter() - self.start
        eta = elapsed / self.done * (self.total - self.done)
        log.info(
            "%s %d/%d: %s | elapsed %.1f s, ETA %.1f s",
            self.label,
            self.done,
            self.total,
            message,
            elapsed,
            eta,
        )
