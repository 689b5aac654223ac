"""Logging for the workflow's scripts: to the rule's log file and to stderr."""

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_FORMAT = "%(asctime)s %(levelname)s %(message)s"


class _NoTraceback(logging.Formatter):
    """Format a record without the traceback of its exception, which goes to the log file."""

    def format(self, record: logging.LogRecord) -> str:
        short = logging.makeLogRecord(
            {**record.__dict__, "exc_info": None, "exc_text": None, "stack_info": None}
        )
        return super().format(short)


@contextmanager
def rule_log(path: str) -> Iterator[logging.Logger]:
    """Log the package's messages to `path` and stderr. An exception ends the script: the log file
    gets its full traceback, stderr the one line `Type: message`, and the exit status is 1."""
    logger = logging.getLogger("mnist_pipeline")
    logger.setLevel(logging.INFO)
    to_file = logging.FileHandler(path, mode="w")
    to_file.setFormatter(logging.Formatter(_FORMAT))
    to_console = logging.StreamHandler(sys.stderr)
    to_console.setFormatter(_NoTraceback(_FORMAT))
    handlers = [to_file, to_console]
    for handler in handlers:
        logger.addHandler(handler)
    try:
        yield logger
    except Exception as error:
        logger.error("%s: %s", type(error).__name__, error, exc_info=True)
        # Exit without Python printing the traceback again on stderr: it is in the log file.
        raise SystemExit(1) from error
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()
