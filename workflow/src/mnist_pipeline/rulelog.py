"""Logging for the workflow's scripts: to the rule's log file and to stderr."""

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def rule_log(path: str) -> Iterator[logging.Logger]:
    """Log the package's messages to `path` and stderr; log an exception as one line, re-raise."""
    logger = logging.getLogger("mnist_pipeline")
    logger.setLevel(logging.INFO)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    handlers = [logging.FileHandler(path, mode="w"), logging.StreamHandler(sys.stderr)]
    for handler in handlers:
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    try:
        yield logger
    except Exception as error:
        logger.error("%s: %s", type(error).__name__, error)
        raise
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()
