"""The end of a `snakemake` run: once it is done, the process exits at once."""

import gc
import threading

# On each pass Snakemake's scheduler arms a timer that wakes it to look for jobs again
# (--max-jobs-per-timespan, 100/1s by default). The timer is not a daemon thread, so the
# interpreter waits for the last one, up to a second, before it exits.
_RESCHEDULING = "JobScheduler._schedule_reevalutation."


def end_promptly() -> None:
    """Let a finished run's process exit without waiting on what is left of the run: the
    scheduler's wake-up timer, and the interpreter's collection of the workflow's objects (the
    DAG, every rule and job) as it shuts down, which they are frozen out of.

    For the end of a `snakemake` command (an onsuccess handler): a process that went on would
    not collect those objects' reference cycles.
    """
    cancel_rescheduling()
    gc.freeze()


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
