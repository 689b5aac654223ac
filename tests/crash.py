"""Leave a file half-written the way a killed job does: a real writer, stopped by SIGKILL."""

import signal
import subprocess
import sys
from pathlib import Path

_WRITER = """
import os, signal, sys
from mnist_pipeline.atomic import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"half of it")
    os.kill(os.getpid(), signal.SIGKILL)
"""


def killed_writer(final: Path) -> Path:
    """Start writing `final` through atomic_path in a child process that is then killed outright;
    return the temporary it left (the only `.part` beside `final` that it made)."""
    before = set(final.parent.glob(f".{final.name}.*.part")) if final.parent.exists() else set()
    result = subprocess.run([sys.executable, "-c", _WRITER, str(final)], check=False)
    assert result.returncode == -signal.SIGKILL, result
    [left] = set(final.parent.glob(f".{final.name}.*.part")) - before
    assert left.read_bytes() == b"half of it" and not final.exists()
    return left
