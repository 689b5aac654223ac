"""Run an iterator ahead of its consumer in a thread, so that the two overlap.

Worth it where both sides spend their time in code that releases the GIL (inflating, numpy,
Arrow's Parquet encoding and decoding): they then run on two cores.
"""

import queue
import threading
from collections.abc import Iterable, Iterator
from contextlib import suppress
from typing import TypeVar

T = TypeVar("T")
_END = object()
_POLL_S = 0.05


def prefetched(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """The items of `items`, in order, produced by a background thread up to `depth` ahead.

    An exception raised while producing is raised here, where its item would have come. When
    the consumer stops early (an exception, a break), the producer stops after the item it is
    making and `items` is closed in its thread. Nothing runs before the first item is asked for.
    """
    if depth < 1:
        raise ValueError(f"depth must be a positive integer, got {depth}")
    return _prefetched(items, depth)


def _prefetched(items: Iterable[T], depth: int) -> Iterator[T]:
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    thread = threading.Thread(target=_produce, args=(items, slots, stop), daemon=True)
    thread.start()
    try:
        while True:
            item, error = slots.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting for room, until it has stopped
            with suppress(queue.Empty):
                slots.get(timeout=_POLL_S)


def _produce(items: Iterable[T], slots: queue.Queue, stop: threading.Event) -> None:
    iterator = iter(items)
    try:
        for item in iterator:
            slots.put((item, None))
            if stop.is_set():
                return
        slots.put((_END, None))
    except BaseException as error:  # handed to the consumer, which raises it
        slots.put((None, error))
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
