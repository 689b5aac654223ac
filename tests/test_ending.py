import gc
import threading
import time
from types import SimpleNamespace

from snakemake.scheduling.job_scheduler import JobScheduler

from mnist_pipeline.ending import cancel_rescheduling, end_promptly


def test_the_schedulers_wake_up_timer_is_cancelled_and_others_are_left():
    # The real method of Snakemake's scheduler arms the timer, so a rename there fails here.
    scheduler = SimpleNamespace(_open_jobs=threading.Semaphore(0))
    JobScheduler._schedule_reevalutation(scheduler, 30)
    other = threading.Timer(30, print)
    other.start()
    try:
        started = time.monotonic()
        assert cancel_rescheduling() == 1
        for thread in threading.enumerate():
            if isinstance(thread, threading.Timer) and thread is not other:
                thread.join(5)
                assert not thread.is_alive()
        assert time.monotonic() - started < 5
        assert other.is_alive()
        assert not scheduler._open_jobs.acquire(blocking=False)  # it never fired
    finally:
        other.cancel()


def test_nothing_to_cancel():
    assert cancel_rescheduling() == 0


def test_ending_promptly_cancels_the_timer_and_freezes_what_is_left():
    scheduler = SimpleNamespace(_open_jobs=threading.Semaphore(0))
    JobScheduler._schedule_reevalutation(scheduler, 30)
    try:
        end_promptly()
        assert gc.get_freeze_count() > 0
        for thread in threading.enumerate():
            if isinstance(thread, threading.Timer):
                thread.join(5)
                assert not thread.is_alive()
        assert not scheduler._open_jobs.acquire(blocking=False)  # it never fired
    finally:
        gc.unfreeze()
