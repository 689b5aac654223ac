"""Verified downloads from a loopback mirror: every way a mirror fails, and what is left behind."""

import hashlib
import logging
import socket
import time
import tracemalloc
from pathlib import Path

import pytest

from mnist_pipeline.download import USER_AGENT, DownloadError, archive_urls, fetch_archive

from mirror import ENDLESS_CAP, HTML_PAGE, LoopbackMirror
from project import SHARED_MNIST

NAME = "t10k-labels-idx1-ubyte.gz"
BODY = bytes(range(256)) * 40 + b"tail"  # 10244 bytes, every byte value
SIZE = len(BODY)
SHA = hashlib.sha256(BODY).hexdigest()
QUICK = {"timeout": 2.0, "retries": 3, "backoff": 0.001}


@pytest.fixture(autouse=True)
def no_proxy_settings(monkeypatch):
    """Loopback tests must not be routed through a proxy set in the caller's environment."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "REQUEST_METHOD"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.upper(), raising=False)


@pytest.fixture
def dest(tmp_path):
    folder = tmp_path / "downloads"
    folder.mkdir()
    return folder / NAME


@pytest.fixture
def mirror():
    with LoopbackMirror({NAME: BODY, f"good/{NAME}": BODY}) as server:
        yield server


def fetch(mirrors, dest, *, size=SIZE, sha256=SHA, log=None, **settings):
    """fetch_archive of NAME with quick settings; log lines go to the list `log` if given."""
    lines = [] if log is None else log
    return fetch_archive(
        NAME, mirrors, size, sha256, dest, log=lines.append, **{**QUICK, **settings}
    )


def assert_nothing_left(dest: Path):
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == [], "a temporary file was left behind"


def fails(mirrors, dest, match, **settings):
    """fetch must raise DownloadError matching `match` and leave nothing; returns the message."""
    with pytest.raises(DownloadError, match=match) as caught:
        fetch(mirrors, dest, **settings)
    assert_nothing_left(dest)
    return str(caught.value)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the happy paths -------------------------------------------------------------------------


def test_archive_urls_join_base_and_name_with_or_without_slash():
    assert archive_urls(["http://a/x/", "http://b/y", "file:///data/m"], "f 1.gz") == [
        "http://a/x/f%201.gz",
        "http://b/y/f%201.gz",
        "file:///data/m/f%201.gz",
    ]


def test_user_agent_names_the_project_and_its_installed_version():
    from importlib.metadata import version

    assert USER_AGENT.startswith(f"mnist-pipeline/{version('mnist-pipeline')} (")


def test_download_writes_the_verified_file_and_sends_our_user_agent(mirror, dest):
    lines = []
    url = fetch([mirror.url], dest, log=lines)
    assert url == mirror.url + NAME
    assert dest.read_bytes() == BODY
    assert list(dest.parent.iterdir()) == [dest]
    [request] = mirror.requests
    assert request.target == f"/{NAME}"
    assert request.headers["User-Agent"] == USER_AGENT
    assert lines == [f"GET {url} (attempt 1/3): ok, {SIZE} bytes, SHA-256 verified"]


def test_a_base_url_without_trailing_slash_and_an_uppercase_pin_work(mirror, dest):
    fetch([mirror.url + "good"], dest, sha256=SHA.upper())
    assert dest.read_bytes() == BODY
    assert mirror.requests[0].target == f"/good/{NAME}"


def test_default_log_goes_to_the_module_logger(mirror, dest, caplog):
    caplog.set_level(logging.INFO, logger="mnist_pipeline.download")
    fetch_archive(NAME, [mirror.url], SIZE, SHA, dest, **QUICK)
    assert [r.name for r in caplog.records] == ["mnist_pipeline.download"]
    assert "ok, 10244 bytes, SHA-256 verified" in caplog.records[0].getMessage()


def test_file_url_mirror_reads_a_local_folder(tmp_path, dest):
    folder = tmp_path / "my mirror"
    folder.mkdir()
    (folder / NAME).write_bytes(BODY)
    url = fetch([folder.as_uri()], dest)
    assert url == f"{folder.as_uri()}/{NAME}"
    assert dest.read_bytes() == BODY


def test_http_proxy_is_honoured(mirror, dest, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", mirror.url)
    url = fetch(["http://mirror.invalid/"], dest)
    assert url == f"http://mirror.invalid/{NAME}"
    assert dest.read_bytes() == BODY
    [request] = mirror.requests
    assert request.target == f"http://mirror.invalid/{NAME}"  # the absolute URL: a proxy request
    assert request.headers["User-Agent"] == USER_AGENT


def test_no_proxy_bypasses_the_proxy(mirror, dest, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}/")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    fetch([mirror.url], dest, retries=1)
    assert mirror.requests[0].target == f"/{NAME}"


# --- one mirror misbehaving, the next one good -------------------------------------------------


def test_checksum_mismatch_moves_to_the_next_mirror_at_once(mirror, dest):
    wrong = BODY[:-1] + b"!"
    mirror.files[NAME] = wrong
    lines = []
    url = fetch([mirror.url, mirror.url + "good/"], dest, log=lines)
    assert url == f"{mirror.url}good/{NAME}"
    assert dest.read_bytes() == BODY
    assert len(mirror.requests_for(NAME)) == 1
    found = hashlib.sha256(wrong).hexdigest()
    assert f"SHA-256 mismatch: found {found}, expected {SHA}" in lines[0]


def test_a_404_moves_to_the_next_mirror_at_once(mirror, dest):
    mirror.script(NAME, 404)
    lines = []
    fetch([mirror.url, mirror.url + "good/"], dest, log=lines)
    assert dest.read_bytes() == BODY
    assert len(mirror.requests_for(NAME)) == 1
    assert lines[0] == f"GET {mirror.url}{NAME} (attempt 1/3): HTTP 404 Not Found"


def test_an_unsupported_scheme_is_skipped_with_a_reason(mirror, dest):
    lines = []
    fetch(["ftp://example.org/mnist/", "/data/mnist", mirror.url], dest, log=lines)
    assert dest.read_bytes() == BODY
    assert lines[:2] == [
        f"ftp://example.org/mnist/{NAME}: skipped, unsupported URL scheme 'ftp://'; "
        "use https://, http:// or file://",
        f"/data/mnist/{NAME}: skipped, no URL scheme; "
        "write https://..., http://... or file:///absolute/folder/",
    ]


def test_server_errors_are_retried_with_doubling_backoff(mirror, dest):
    mirror.script(NAME, 500, 503, "ok")
    lines = []
    start = time.monotonic()
    fetch([mirror.url], dest, log=lines, backoff=0.05)
    elapsed = time.monotonic() - start
    assert dest.read_bytes() == BODY
    assert len(mirror.requests) == 3
    assert elapsed >= 0.05 + 0.10
    assert lines == [
        f"GET {mirror.url}{NAME} (attempt 1/3): HTTP 500 Internal Server Error; retrying in 0.05 s",
        f"GET {mirror.url}{NAME} (attempt 2/3): HTTP 503 Service Unavailable; retrying in 0.1 s",
        f"GET {mirror.url}{NAME} (attempt 3/3): ok, {SIZE} bytes, SHA-256 verified",
    ]


def test_a_truncated_body_is_retried(mirror, dest):
    mirror.script(NAME, "truncate")
    lines = []
    fetch([mirror.url], dest, log=lines)
    assert dest.read_bytes() == BODY
    assert len(mirror.requests) == 2
    assert f"connection closed after {SIZE // 2} of the {SIZE} bytes announced" in lines[0]


def test_a_mirror_that_hangs_is_abandoned_for_the_next(mirror, dest):
    mirror.script(NAME, "hang:10", "hang:10")
    lines = []
    start = time.monotonic()
    url = fetch([mirror.url, mirror.url + "good/"], dest, log=lines, timeout=0.3, retries=2)
    assert time.monotonic() - start < 3
    assert url == f"{mirror.url}good/{NAME}"
    assert dest.read_bytes() == BODY
    assert lines[0].endswith("timed out: no answer within 0.3 s; retrying in 0.001 s")
    assert lines[1].endswith("timed out: no answer within 0.3 s")


def test_a_body_that_stalls_midway_is_abandoned_and_retried(mirror, dest):
    mirror.script(NAME, "stall:10")
    lines = []
    fetch([mirror.url], dest, log=lines, timeout=0.3)
    assert dest.read_bytes() == BODY
    assert "timed out: no answer within 0.3 s after" in lines[0]


# --- failures: a clear error, nothing left ------------------------------------------------------


def test_checksum_mismatch_everywhere_fails_naming_both_hashes(mirror, dest):
    other = hashlib.sha256(b"other").hexdigest()
    message = fails([mirror.url], dest, "SHA-256 mismatch", sha256=other)
    assert f"found {SHA}, expected {other}" in message
    assert len(mirror.requests) == 1


def test_an_html_page_served_with_200_fails_helpfully(mirror, dest):
    mirror.script(NAME, "html")
    message = fails([mirror.url], dest, "starting with '<!DOCTYPE html")
    assert (
        f"got {len(HTML_PAGE)} bytes starting with '<!DOCTYPE html> <html><head><tit'..." in message
    )
    assert f"expected {SIZE} bytes" in message
    assert "a web page, not the archive" in message
    assert len(mirror.requests) == 1


def test_a_short_binary_body_is_described_by_its_first_bytes(mirror, dest):
    mirror.files[NAME] = b"\x1f\x8b\x08\x00" + b"\0" * 96
    expected = f"got 100 bytes starting with bytes 1f 8b 08 00 00 00 00 00; expected {SIZE}"
    message = fails([mirror.url], dest, expected)
    assert "web page" not in message


def test_truncated_on_every_attempt_fails(mirror, dest):
    mirror.script(NAME, "truncate", "truncate", "truncate")
    message = fails([mirror.url], dest, "body cut short")
    assert f"of the {SIZE} bytes announced (Content-Length) (3 attempts)" in message
    assert len(mirror.requests) == 3


def test_a_body_larger_than_announced_by_content_length_is_refused_unread(mirror, dest):
    mirror.files[NAME] = BODY + b"extra"
    message = fails([mirror.url], dest, rf"announces {SIZE + 5} bytes \(Content-Length\)")
    assert f"expected {SIZE} bytes" in message
    assert len(mirror.requests) == 1


def test_a_body_without_length_is_never_read_past_the_pinned_size(mirror, dest):
    mirror.script(NAME, "endless")
    fails([mirror.url], dest, f"more than the expected {SIZE} bytes arrived; stopped reading there")
    [request] = mirror.requests
    assert request.done.wait(5), "the server still sending: the client kept reading"
    # What the server got rid of is at most what the socket buffers hold, far from the whole.
    assert request.sent < 64 << 20 < ENDLESS_CAP


def test_memory_stays_flat_while_streaming_a_large_file(dest):
    body = bytes(16 << 20)
    with LoopbackMirror({NAME: body}) as server:
        tracemalloc.start()
        try:
            fetch([server.url], dest, size=len(body), sha256=hashlib.sha256(body).hexdigest())
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert dest.stat().st_size == len(body)
    assert peak < 4 << 20, f"peak {peak} bytes while streaming {len(body)}"


def test_a_body_without_length_of_the_right_size_is_accepted(mirror, dest):
    mirror.script(NAME, "nolength")
    fetch([mirror.url], dest)
    assert dest.read_bytes() == BODY


def test_a_missing_local_file_fails_without_retrying(tmp_path, dest):
    missing = tmp_path / "empty"
    missing.mkdir()
    message = fails([missing.as_uri()], dest, "cannot read the local file")
    assert "No such file or directory" in message
    assert "attempts" not in message


def test_every_mirror_failing_lists_every_url_and_why(mirror, dest, tmp_path):
    mirror.script(NAME, 500, 500)
    mirror.script(f"good/{NAME}", "hang:10", "hang:10")
    mirror.files["bad/" + NAME] = b"<html>nope</html>"
    refused = f"http://127.0.0.1:{free_port()}/"
    mirrors = [
        mirror.url,
        mirror.url + "missing/",
        mirror.url + "bad/",
        "ftp://example.org/",
        tmp_path.as_uri() + "/nowhere",
        refused,
        mirror.url + "good/",
    ]
    lines = []
    with pytest.raises(DownloadError) as caught:
        fetch(mirrors, dest, log=lines, timeout=0.3, retries=2)
    assert_nothing_left(dest)
    message = str(caught.value)
    assert message.startswith(
        f"Could not download {NAME} ({SIZE} bytes, SHA-256 {SHA}) from any mirror. Tried:\n"
    )
    tried = [line for line in message.splitlines() if line.startswith("  - ")]
    assert [line.split(": ", 1)[0] for line in tried] == [
        f"  - {u}{NAME}" for u in archive_urls(mirrors, "")
    ]
    reasons = [line.split(": ", 1)[1] for line in tried]
    assert reasons[0] == "HTTP 500 Internal Server Error (2 attempts)"
    assert reasons[1] == "HTTP 404 Not Found"
    assert reasons[2].startswith("got 17 bytes starting with '<html>nope</html>'")
    assert reasons[3].startswith("unsupported URL scheme 'ftp://'")
    assert reasons[4].startswith("cannot read the local file")
    assert reasons[5].startswith("connection failed:") and reasons[5].endswith("(2 attempts)")
    assert reasons[6] == "timed out: no answer within 0.3 s (2 attempts)"
    assert "datasets.<dataset>.mirrors" in message and "overlay config" in message
    assert len(lines) == 2 + 1 + 1 + 1 + 1 + 2 + 2


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"mirrors": []}, r"mirrors must be a non-empty list of base URLs; found \[\]"),
        ({"mirrors": "http://a/"}, "mirrors must be a non-empty list"),
        ({"size": 0}, "size must be a positive whole number of bytes; found 0"),
        ({"sha256": "abc"}, "sha256 must be 64 hex digits; found 'abc'"),
        ({"timeout": 0}, "timeout must be more than 0 seconds; found 0"),
        ({"retries": 0}, "retries must be a whole number of at least 1; found 0"),
        ({"backoff": -1}, "backoff must be 0 seconds or more; found -1"),
    ],
)
def test_bad_arguments_are_refused_before_any_request(mirror, dest, settings, match):
    arguments = {"mirrors": [mirror.url], **settings}
    with pytest.raises(DownloadError, match=f"Cannot download {NAME}: {match}"):
        fetch(arguments.pop("mirrors"), dest, **arguments)
    assert_nothing_left(dest)
    assert mirror.requests == []


# --- the real archives ---------------------------------------------------------------------------


@pytest.mark.skipif(
    not (SHARED_MNIST / "SHA256SUMS").exists(),
    reason=f"the real MNIST archives are not on this machine ({SHARED_MNIST})",
)
def test_the_real_archives_download_and_verify(tmp_path):
    sums = dict(
        line.split()[::-1] for line in (SHARED_MNIST / "SHA256SUMS").read_text().splitlines()
    )
    with LoopbackMirror.from_directory(SHARED_MNIST, prefix="mnist") as mirror:
        for name, sha in sums.items():
            size = (SHARED_MNIST / name).stat().st_size
            fetch_archive(name, [mirror.url], size, sha, tmp_path / name, **QUICK)
            assert (tmp_path / name).read_bytes() == (SHARED_MNIST / name).read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(sums)
