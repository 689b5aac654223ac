"""Progress lines for long work: quiet for short jobs, one line every few seconds for long ones."""

import time
from collections.abc import Callable

INTERVAL = 5.0  # seconds between lines; a job shorter than this prints none


class Progress:
    """Counts work done and logs `what: done of total unit (pct), rate unit/s` now and then.

    Nothing is logged until `interval` seconds have passed since the start, then at most one line
    per `interval`, so a short job stays quiet and a long one moves. `total` may be None (unknown).
    """

    def __init__(
        self,
        what: str,
        total: int | None,
        unit: str,
        log: Callable[[str], object],
        *,
        interval: float = INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.what, self.total, self.unit, self.log = what, total, unit, log
        self.interval, self.clock = interval, clock
        self.done = 0
        self.start = self.last = clock()

    def update(self, amount: int) -> None:
        self.done += amount
        now = self.clock()
        if now - self.last >= self.interval:
            self.last = now
            self.log(self.line(now))

    def line(self, now: float) -> str:
        rate = self.done / max(now - self.start, 1e-9)
        if self.total:
            of = f" of {self.total:,} {self.unit} ({100 * self.done / self.total:.0f}%)"
        else:
            of = f" {self.unit}"
        return f"{self.what}: {self.done:,}{of}, {rate:,.0f} {self.unit}/s"
