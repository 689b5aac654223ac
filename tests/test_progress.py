"""Progress lines: none for short work, one per interval for long work."""

from mnist_pipeline.progress import Progress


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def run(steps, seconds_per_step, total=None):
    clock, lines = Clock(), []
    progress = Progress("rows", total, "rows", lines.append, interval=5, clock=clock)
    for _ in range(steps):
        clock.now += seconds_per_step
        progress.update(100)
    return lines


def test_short_work_prints_nothing():
    assert run(steps=1000, seconds_per_step=0.004) == []


def test_long_work_prints_one_line_per_interval_not_per_step():
    lines = run(steps=1000, seconds_per_step=0.125, total=100_000)  # 125 s
    assert len(lines) == 25
    assert lines[0] == "rows: 4,000 of 100,000 rows (4%), 800 rows/s"


def test_unknown_total_gives_count_and_rate():
    assert run(steps=60, seconds_per_step=0.125)[0] == "rows: 4,000 rows, 800 rows/s"
