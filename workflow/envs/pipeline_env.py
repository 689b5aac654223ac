"""Write pipeline.yaml, the rules' conda environment, from the pins of requirements.lock.

    python workflow/envs/pipeline_env.py

Snakemake reads an environment file from wherever it copies it and names the environment by a
hash of the file's text, so the file holds every pin itself: no path into the checkout, and a
changed lock changes the file and so the environment. The pipeline's own package is not among
them: workflow/Snakefile puts the workflow's src/ on the scripts' import path.
"""

import sys
from pathlib import Path

ENV = Path(__file__).with_name("pipeline.yaml")
LOCK = Path(__file__).resolve().parents[2] / "requirements.lock"
HEADER = """\
# The software every rule runs with, for `snakemake --sw-deployment-method conda`: the pins of
# requirements.lock, written by workflow/envs/pipeline_env.py (do not edit by hand).
channels:
  - conda-forge
  - nodefaults
dependencies:
  - python={python}
  - pip
  - pip:
"""


def pins(lock_text: str) -> list[str]:
    """The `name==version` lines of a pip lock file, without comments and blank lines."""
    lines = (line.split("#", 1)[0].strip() for line in lock_text.splitlines())
    return [line for line in lines if line]


def render(lock_text: str, python: str = "3.11") -> str:
    return HEADER.format(python=python) + "".join(f"      - {pin}\n" for pin in pins(lock_text))


if __name__ == "__main__":
    ENV.write_text(render(LOCK.read_text()))
    print(f"{ENV}: {len(pins(LOCK.read_text()))} pins from {LOCK.name}", file=sys.stderr)
