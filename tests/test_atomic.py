"""A file written through atomic_path appears whole under its name, or not at all."""

import os

import pytest

from mnist_pipeline.atomic import atomic_path


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


def test_the_file_is_as_readable_as_one_made_by_open(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "out.csv") as tmp:
            tmp.write_text("x")
    finally:
        os.umask(old)
    assert (tmp_path / "out.csv").stat().st_mode & 0o777 == 0o644
