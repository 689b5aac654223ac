"""Logging for the workflow's scripts: to the rule's log file and to stderr."""

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from .atomic import no_space

_FORMAT = "%(asctime)s %(levelname)s %(message)s"


class _NoTraceback(logging.Formatter):
    """Format a record without the traceback of its exception, which goes to the log file."""

    def format(self, record: logging.LogRecord) -> str:
        short = logging.makeLogRecord(
            {**record.__dict__, "exc_info": None, "exc_text": None, "stack_info": None}
        )
        return super().format(short)


class _LogFile(logging.FileHandler):
    """The log file; the first write that fails is kept for the end of the job (logging would
    print a traceback for each)."""

    error: OSError | None = None

    def handleError(self, record: logging.LogRecord) -> None:
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            super().handleError(record)
        elif self.error is None:
            self.error = error

    def close(self) -> None:
        try:
            super().close()
        except OSError as error:  # the last flush
            self.error = self.error or error


@contextmanager
def rule_log(path: str) -> Iterator[logging.Logger]:
    """Log the package's messages to `path` and stderr. An exception ends the script: the log file
    gets its full traceback, stderr the one line `Type: message`, and the exit status is 1.
    A log file that cannot be written (a full disk) ends the script the same way."""
    logger = logging.getLogger("mnist_pipeline")
    logger.setLevel(logging.INFO)
    to_file = _LogFile(path, mode="w")
    to_file.setFormatter(logging.Formatter(_FORMAT))
    to_console = logging.StreamHandler(sys.stderr)
    to_console.setFormatter(_NoTraceback(_FORMAT))
    logger.addHandler(to_file)
    logger.addHandler(to_console)
    try:
        yield logger
    except Exception as error:
        logger.error("%s: %s", type(error).__name__, error, exc_info=True)
        # Exit without Python printing the traceback again on stderr: it is in the log file.
        raise SystemExit(1) from error
    finally:
        logger.removeHandler(to_file)
        to_file.close()
        if to_file.error is not None:
            logger.error("%s", _unwritable(path, to_file.error))
        logger.removeHandler(to_console)
        to_console.close()
        if to_file.error is not None:
            raise SystemExit(1) from to_file.error


def _unwritable(path: str, error: OSError) -> str:
    """`Type: message` for a log file that could not be written."""
    full = no_space(path, error)
    if full:
        return f"{type(full).__name__}: {full}"
    return f"{type(error).__name__}: {path}: cannot write this job's log ({error})"
