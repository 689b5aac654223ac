"""The project's own checks: ruff, snakefmt and snakemake --lint stay clean."""

import subprocess
import sys
from pathlib import Path

import pytest

from project import REPO

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        ["snakefmt", "--check", "."],
        ["snakemake", "--lint"],
    ],
    ids=" ".join,
)
def test_checks_are_clean(command):
    result = subprocess.run(
        [str(BIN / command[0]), *command[1:]], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
