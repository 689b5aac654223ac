"""Work done ahead of its consumer in threads: an iterator run ahead in one thread, a function
mapped over items by several, so that the work overlaps with what consumes it.

Worth it where the work is in code that releases the GIL (inflating, numpy, Arrow's Parquet
encoding and decoding): it then runs on several cores.
"""

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")
_END = object()


def prefetched(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """The items of `items`, in order, produced by a background thread up to `depth` ahead.

    At most `depth` items are made (or being made) beyond the one the consumer holds, so memory
    is bounded by depth + 1 items. An exception raised while producing is raised here, where
    its item would have come. When the consumer stops early (an exception, a break), the
    producer stops after the item it is making and `items` is closed in its thread. Nothing
    runs before the first item is asked for.
    """
    if depth < 1:
        raise ValueError(f"depth must be a positive integer, got {depth}")
    return _prefetched(items, depth)


def _prefetched(items: Iterable[T], depth: int) -> Iterator[T]:
    made: queue.SimpleQueue = queue.SimpleQueue()
    room = threading.Semaphore(depth)
    stop = threading.Event()
    thread = threading.Thread(target=_produce, args=(items, made, room, stop), daemon=True)
    thread.start()
    try:
        while True:
            item, error = made.get()
            if error is not None:
                raise error
            if item is _END:
                return
            room.release()  # taken: the producer may start on the next one
            yield item
    finally:
        stop.set()
        room.release()  # wake a producer waiting for room, so that it sees the stop
        thread.join()


def _produce(
    items: Iterable[T], made: queue.SimpleQueue, room: threading.Semaphore, stop: threading.Event
) -> None:
    iterator = iter(items)
    try:
        while True:
            room.acquire()
            if stop.is_set():
                return
            item = next(iterator, _END)
            made.put((item, None))
            if item is _END:
                return
    except BaseException as error:  # handed to the consumer, which raises it
        made.put((None, error))
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


def mapped(function: Callable[[T], R], items: Iterable[T], threads: int) -> Iterator[R]:
    """function(item) for each of `items`, in order, computed by `threads` threads.

    Items are taken from `items` in the calling thread as results are consumed, at most
    `threads` ahead; an exception raised by `function` is raised here, in its item's place.
    One thread: computed here, as map() would.
    """
    if threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads}")
    if threads == 1:
        return map(function, items)
    return _mapped(function, items, threads)


def _mapped(function: Callable[[T], R], items: Iterable[T], threads: int) -> Iterator[R]:
    pending: deque[Future] = deque()
    with ThreadPoolExecutor(threads) as pool:
        try:
            for item in items:
                pending.append(pool.submit(function, item))
                if len(pending) > threads:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
