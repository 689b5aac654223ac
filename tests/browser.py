"""Headless Chromium for tests: open a local HTML file, run its JavaScript, keep a screenshot and
the DOM. It reaches local files only: with `unshare --net` where that works (an empty network
namespace), and always with host names that resolve to nothing and a proxy on a closed port of
127.0.0.1."""

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

WINDOW = (1280, 900)
# Virtual time Chromium lets pass (timers fast-forwarded) before it takes the screenshot.
SETTLE_MS = 5000
ISOLATION = [
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
]


@dataclass(frozen=True)
class Page:
    dom: str  # the document after its scripts ran
    screenshot: Path


def find_chromium() -> tuple[str | None, str]:
    """The chromium executable, installed with apt-get if missing and allowed; else None and why."""
    found = shutil.which("chromium")
    if found:
        return found, ""
    if os.geteuid() != 0:
        return None, "chromium is not installed and installing it needs root (apt-get)"
    if shutil.which("apt-get") is None:
        return None, "chromium is not installed and there is no apt-get to install it"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        try:
            done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1200)
        except subprocess.TimeoutExpired:
            return None, f"{' '.join(command)} did not finish in 20 minutes"
        if done.returncode != 0:
            return None, f"{' '.join(command)} failed: {done.stderr.strip()[-300:]}"
    found = shutil.which("chromium")
    return (found, "") if found else (None, "apt-get installed chromium but it is not on PATH")


def network_jail() -> list[str]:
    """`unshare --net` when this process may make a network namespace, else nothing."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "--net", "true"], capture_output=True).returncode == 0:
        return [unshare, "--net"]
    return []


def open_page(chromium: str, jail: list[str], page: Path, screenshot: Path) -> Page:
    """Load `page` (a local file) in a fresh profile; return its DOM and a screenshot."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        command = [
            *jail,
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            *ISOLATION,
            f"--user-data-dir={profile}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            f"--virtual-time-budget={SETTLE_MS}",
            f"--screenshot={screenshot}",
            "--dump-dom",
            page.resolve().as_uri(),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode != 0 or not screenshot.is_file():
        raise AssertionError(f"chromium failed on {page}:\n{done.stderr[-2000:]}")
    return Page(dom=done.stdout, screenshot=screenshot)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's header."""
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
