"""The end of a Snakemake run: once it is done, nothing of the scheduler's holds the process up."""

import threading

# On each pass Snakemake's scheduler arms a timer that wakes it to look for jobs again
# (--max-jobs-per-timespan, 100/1s by default). The timer is not a daemon thread, so the
# interpreter waits for the last one, up to a second, before it exits.
_RESCHEDULING = "JobScheduler._schedule_reevalutation."


def cancel_rescheduling() -> int:
    """Cancel the scheduler's pending wake-up timers (when the run is over); return how many."""
    timers = [
        thread
        for thread in threading.enumerate()
        if isinstance(thread, threading.Timer)
        and getattr(thread.function, "__qualname__", "").startswith(_RESCHEDULING)
    ]
    for timer in timers:
        timer.cancel()
    return len(timers)
