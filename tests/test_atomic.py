"""A file written through atomic_path appears whole under its name, or not at all."""

import logging
import os
import re

import pytest

from mnist_pipeline.atomic import atomic_path

from crash import killed_writer


def test_the_file_takes_its_name_only_when_complete(tmp_path):
    final = tmp_path / "sub" / "out.csv"
    with atomic_path(final) as tmp:
        tmp.write_text("a,b\n")
        assert tmp.parent == final.parent and not final.exists()
    assert final.read_text() == "a,b\n"
    assert [p.name for p in final.parent.iterdir()] == ["out.csv"]


def test_a_failure_leaves_neither_the_file_nor_the_temporary(tmp_path):
    final = tmp_path / "out.csv"
    with pytest.raises(RuntimeError, match="half-way"), atomic_path(final) as tmp:
        tmp.write_text("a,")
        raise RuntimeError("half-way")
    assert list(tmp_path.iterdir()) == []


def test_a_failure_keeps_an_older_complete_file(tmp_path):
    final = tmp_path / "out.csv"
    final.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_path(final) as tmp:
        tmp.write_text("new, but cut")
        raise RuntimeError
    assert final.read_text() == "old\n" and list(tmp_path.iterdir()) == [final]


def test_the_bytes_are_on_disk_before_the_name_is(tmp_path, monkeypatch):
    # A power cut cannot be staged here; what makes the file survive one is the order: its data
    # flushed (fsync of the temporary, holding all of it) before the rename gives it its name.
    events = []
    fsync, replace = os.fsync, os.replace

    def recording_fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"), os.fstat(fd).st_size))
        fsync(fd)

    def recording_replace(src, dst):
        events.append(("replace", os.fspath(src), os.fspath(dst)))
        replace(src, dst)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)
    final = tmp_path / "out.csv"
    with atomic_path(final) as tmp:
        tmp.write_text("a,b\n1,2\n")
    assert events == [("fsync", str(tmp), 8), ("replace", str(tmp), str(final))]


def test_the_file_is_as_readable_as_one_made_by_open(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "out.csv") as tmp:
            tmp.write_text("x")
    finally:
        os.umask(old)
    assert (tmp_path / "out.csv").stat().st_mode & 0o777 == 0o644


def test_a_killed_writer_leaves_a_temporary_that_the_next_writer_removes(tmp_path, caplog):
    final = tmp_path / "out.csv"
    first = killed_writer(final)
    assert re.fullmatch(r"\.out\.csv\.[^.]+\.part", first.name)
    second = killed_writer(final)  # it removed the first one's leftover, then died too
    assert list(tmp_path.iterdir()) == [second]

    with caplog.at_level(logging.INFO, logger="mnist_pipeline"), atomic_path(final) as tmp:
        assert list(tmp_path.iterdir()) == [tmp]
        tmp.write_text("whole\n")
    assert list(tmp_path.iterdir()) == [final] and final.read_text() == "whole\n"
    assert any(f"removed {second}" in message for message in caplog.messages)


def test_only_the_temporaries_of_the_same_name_are_removed(tmp_path):
    final = tmp_path / "out"
    kept = [
        ".out.csv.abcd1234.part",  # out.csv's temporary: another file, maybe being written now
        ".outer.abcd1234.part",
        ".out.abcd1234.partial",
        ".out..part",
        "out.abcd1234.part",
        "out.csv",
    ]
    for name in kept:
        (tmp_path / name).write_text("keep")
    (tmp_path / ".out.dir12345.part").mkdir()
    (tmp_path / ".out.x_9k2mq1.part").write_text("stale")
    with atomic_path(final) as tmp:
        tmp.write_text("new")
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {*kept, ".out.dir12345.part", "out"}
    assert all((tmp_path / name).read_text() == "keep" for name in kept)
