"""Write a file under a temporary name in its folder; give it its final name once complete."""

import errno
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import MnistPipelineError

_LOG = logging.getLogger(__name__)
_SUFFIX = ".part"
_FULL = (errno.ENOSPC, errno.EDQUOT)  # no space left; over the disk quota


class NoSpaceError(MnistPipelineError):
    """A file could not be written: its file system is full or over quota."""


@contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it to `final` if the block succeeds.

    The temporary is `.NAME.XXXXXXXX.part`. On any exception it is removed, so a later run never
    mistakes a half-written file for good output. A process killed outright (SIGKILL, power loss)
    cannot remove it: the next writer of NAME removes such leftovers before it starts, since only
    one writer at a time makes a given output (Snakemake runs one job per output and locks the
    working folder). The file gets the permissions a plain `open` would give it (mkstemp makes it
    private to its owner), and its bytes are on disk before it takes its name. A full file system
    or quota raises NoSpaceError, naming `final`.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_parts(final)
    with _named_if_full(final):
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=_prefix(final), suffix=_SUFFIX)
        os.close(fd)
        tmp = Path(tmp)
        try:
            yield tmp
            tmp.chmod(0o666 & ~_umask())
            _flush(tmp)
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)


@contextmanager
def _named_if_full(final: Path) -> Iterator[None]:
    """An OSError that says the file system is full becomes the NoSpaceError naming `final`."""
    try:
        yield
    except OSError as error:
        if full := no_space(final, error):
            raise full from error
        raise


def _flush(path: Path) -> None:
    """Put the file's bytes on disk before it takes its final name. After a power cut, a file
    renamed before its data was written back can come back empty or short under that name (ext4
    and XFS allocate its blocks late), and Snakemake would take it as made."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def no_space(path: str | os.PathLike, error: OSError) -> NoSpaceError | None:
    """The NoSpaceError of writing `path`, if `error` says that its file system is full."""
    if error.errno not in _FULL:
        return None
    return NoSpaceError(
        f"{os.fspath(path)}: no space left to write it ({error}): the file system that holds "
        f"{os.path.dirname(path) or '.'} is full (or over quota). Free some space there and rerun."
    )


def _remove_stale_parts(final: Path) -> None:
    """Remove the temporaries `atomic_path` left beside `final` (`.NAME.XXXXXXXX.part`).

    The random middle of the name has no dot, so the temporary of another file whose name starts
    with NAME and a dot (`out` and `out.csv`) is never taken for one of NAME's.
    """
    prefix = _prefix(final)
    stale = [
        path
        for path in final.parent.iterdir()
        if path.name.startswith(prefix)
        and path.name.endswith(_SUFFIX)
        and _is_token(path.name[len(prefix) : -len(_SUFFIX)])
        and not path.is_dir()
    ]
    for path in stale:
        path.unlink(missing_ok=True)
        _LOG.info("removed %s, left by an earlier write of %s that never finished", path, final)


def _prefix(final: Path) -> str:
    return f".{final.name}."


def _is_token(middle: str) -> bool:
    return bool(middle) and "." not in middle


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
