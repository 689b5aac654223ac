"""Work ahead in threads gives the same items, in order, with the same errors and clean-up."""

import threading
import time

import pytest

from mnist_pipeline.prefetch import mapped, prefetched


class Source:
    """Counts the items made and records whether (and in which thread) it was closed."""

    def __init__(self, count: int, fail_at: int | None = None):
        self.count, self.fail_at = count, fail_at
        self.made = 0
        self.closed_in: str | None = None
        self.threads: set[str] = set()

    def __iter__(self):
        try:
            for i in range(self.count):
                self.threads.add(threading.current_thread().name)
                if i == self.fail_at:
                    raise OSError(f"item {i} cannot be read")
                self.made += 1
                yield i
        finally:
            self.closed_in = threading.current_thread().name


@pytest.mark.parametrize("depth", [1, 3])
def test_same_items_in_order_made_in_another_thread(depth):
    source = Source(50)
    assert list(prefetched(source, depth)) == list(range(50))
    assert source.threads and threading.current_thread().name not in source.threads
    assert source.closed_in in source.threads


def test_nothing_is_made_before_the_first_item_is_asked_for():
    source = Source(5)
    items = prefetched(source)
    assert source.made == 0
    assert next(items) == 0
    items.close()


def test_an_error_while_producing_is_raised_where_its_item_would_come():
    source = Source(10, fail_at=4)
    got = []
    with pytest.raises(OSError, match="item 4 cannot be read"):
        for item in prefetched(source):
            got.append(item)
    assert got == [0, 1, 2, 3]
    assert source.closed_in is not None


@pytest.mark.parametrize("depth", [1, 2])
def test_a_consumer_that_stops_early_stops_and_closes_the_producer(depth):
    source = Source(1000)
    for item in prefetched(source, depth):
        if item == 3:
            break
    # Closed, in its own thread, having made at most the items that fit ahead of the consumer.
    assert source.closed_in is not None and source.closed_in != threading.current_thread().name
    assert source.made <= 4 + depth + 1


def test_a_consumer_error_stops_the_producer():
    source = Source(1000)
    with pytest.raises(ZeroDivisionError):
        for item in prefetched(source):
            if item == 2:
                raise ZeroDivisionError
    assert source.closed_in is not None
    assert source.made < 10


def test_depth_must_be_positive():
    with pytest.raises(ValueError, match="depth must be a positive integer, got 0"):
        prefetched([], 0)


@pytest.mark.parametrize("depth", [1, 2])
def test_at_most_depth_items_are_made_ahead_of_the_one_held(depth):
    source = Source(20)
    for held, _ in enumerate(prefetched(source, depth)):
        time.sleep(0.01)  # time for the producer to run ahead as far as it may
        assert source.made <= held + 1 + depth


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_mapped_gives_results_in_order_computed_in_threads(threads):
    seen = set()

    def square(item):
        seen.add(threading.current_thread().name)
        time.sleep(0.001 * (item % 3))  # finishing out of order
        return item * item

    assert list(mapped(square, range(30), threads)) == [i * i for i in range(30)]
    assert (threading.current_thread().name in seen) == (threads == 1)


def test_mapped_takes_items_as_results_are_consumed_and_raises_in_place():
    taken = []

    def items():
        for i in range(100):
            taken.append(i)
            yield i

    def invert(item):
        return 1 / (item - 5)

    results = mapped(invert, items(), 2)
    assert next(results) == -0.2
    assert len(taken) <= 4  # two threads' worth ahead, not the whole input
    with pytest.raises(ZeroDivisionError):
        list(results)
    assert len(taken) < 10


def test_threads_must_be_positive():
    with pytest.raises(ValueError, match="threads must be a positive integer, got 0"):
        mapped(abs, [], 0)
