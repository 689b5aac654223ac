"""Verified downloads from a loopback mirror: every way a mirror fails, and what is left behind."""

import base64
import hashlib
import logging
import os
import re
import socket
import time
import tracemalloc
from pathlib import Path

import pytest

from mnist_pipeline.download import USER_AGENT, DownloadError, fetch_file, mirror_urls

from mirror import ENDLESS_CAP, HTML_PAGE, LoopbackMirror
from project import SHARED_MNIST

NAME = "t10k-labels-idx1-ubyte.gz"
BODY = bytes(range(256)) * 40 + b"tail"  # 10244 bytes, every byte value
SIZE = len(BODY)
SHA = hashlib.sha256(BODY).hexdigest()
# A body whose deadline (timeout + size at 100 kB/s) is 2 s past its timeout, for tests where the
# timeout, not the deadline, must end an attempt.
LONG_BODY = bytes(range(256)) * 800  # 204800 bytes
LONG = {"size": len(LONG_BODY), "sha256": hashlib.sha256(LONG_BODY).hexdigest()}
MIN_RATE = 100_000  # bytes/s, as config/README.md documents the deadline
QUICK = {"timeout": 2.0, "retries": 3, "backoff": 0.001}
KEY = "datasets.mnist"
WHAT_TO_DO = f"What to do: check {KEY}.mirrors in the config"


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


def fetch(mirrors, dest, *, name=NAME, size=SIZE, sha256=SHA, log=None, **settings):
    """fetch_file of `name` with quick settings; log lines go to the list `log` if given."""
    lines = [] if log is None else log
    return fetch_file(
        name,
        mirrors,
        size,
        sha256,
        dest,
        config_key=KEY,
        pins_key=f"{KEY}.files",
        log=lines.append,
        **{**QUICK, **settings},
    )


def assert_only_the_file(dest: Path, body: bytes):
    """`dest` holds `body`, and nothing else (no temporary file) is in its folder."""
    assert dest.read_bytes() == body
    assert list(dest.parent.iterdir()) == [dest], "a temporary file was left behind"


def assert_nothing_left(dest: Path):
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == [], "a temporary file was left behind"


def fails(mirrors, dest, match, *, name=NAME, **settings):
    """fetch must raise DownloadError matching `match`, naming every URL tried and the config
    key and saying what to do, and leave nothing; returns the message."""
    with pytest.raises(DownloadError, match=match) as caught:
        fetch(mirrors, dest, name=name, **settings)
    assert_nothing_left(dest)
    message = str(caught.value)
    for url in mirror_urls(mirrors, name):
        shown = re.sub(r"//([^/@:]*):[^/@]*@", r"//\1:***@", url)  # the password hidden
        assert f"  - {shown}: " in message
    assert WHAT_TO_DO in message and f"under {KEY}.files" in message
    return message


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the happy paths -------------------------------------------------------------------------


def test_mirror_urls_join_base_and_name_with_or_without_slash():
    assert mirror_urls(["http://a/x/", "http://b/y", "file:///data/m"], "f 1.gz") == [
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
    assert_only_the_file(dest, BODY)
    assert list(dest.parent.iterdir()) == [dest]
    [request] = mirror.requests
    assert request.target == f"/{NAME}"
    assert request.headers["User-Agent"] == USER_AGENT
    assert lines == [f"GET {url} (attempt 1/3): ok, {SIZE} bytes, SHA-256 verified"]


def test_a_base_url_without_trailing_slash_and_an_uppercase_pin_work(mirror, dest):
    fetch([mirror.url + "good"], dest, sha256=SHA.upper())
    assert_only_the_file(dest, BODY)
    assert mirror.requests[0].target == f"/good/{NAME}"


def test_default_log_goes_to_the_module_logger(mirror, dest, caplog):
    caplog.set_level(logging.INFO, logger="mnist_pipeline.download")
    fetch_file(NAME, [mirror.url], SIZE, SHA, dest, config_key=KEY, **QUICK)
    assert [r.name for r in caplog.records] == ["mnist_pipeline.download"]
    assert "ok, 10244 bytes, SHA-256 verified" in caplog.records[0].getMessage()


def test_file_url_mirror_reads_a_local_folder(tmp_path, dest):
    folder = tmp_path / "my mirror"
    folder.mkdir()
    (folder / NAME).write_bytes(BODY)
    url = fetch([folder.as_uri()], dest)
    assert url == f"{folder.as_uri()}/{NAME}"
    assert_only_the_file(dest, BODY)


def test_http_proxy_is_honoured(mirror, dest, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", mirror.url)
    url = fetch(["http://mirror.invalid/"], dest)
    assert url == f"http://mirror.invalid/{NAME}"
    assert_only_the_file(dest, BODY)
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
    assert_only_the_file(dest, BODY)
    assert len(mirror.requests_for(NAME)) == 1
    found = hashlib.sha256(wrong).hexdigest()
    assert f"SHA-256 mismatch: found {found}, expected {SHA}" in lines[0]


def test_a_404_moves_to_the_next_mirror_at_once(mirror, dest):
    mirror.script(NAME, 404)
    lines = []
    fetch([mirror.url, mirror.url + "good/"], dest, log=lines)
    assert_only_the_file(dest, BODY)
    assert len(mirror.requests_for(NAME)) == 1
    assert lines[0] == f"GET {mirror.url}{NAME} (attempt 1/3): HTTP 404 Not Found"


def test_an_unsupported_scheme_is_skipped_with_a_reason(mirror, dest):
    lines = []
    fetch(["ftp://example.org/mnist/", "/data/mnist", mirror.url], dest, log=lines)
    assert_only_the_file(dest, BODY)
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
    assert_only_the_file(dest, BODY)
    assert len(mirror.requests) == 3
    assert elapsed >= 0.05 + 0.10
    assert lines == [
        f"GET {mirror.url}{NAME} (attempt 1/3): HTTP 500 Internal Server Error; retrying in 0.05 s",
        f"GET {mirror.url}{NAME} (attempt 2/3): HTTP 503 Service Unavailable; retrying in 0.1 s",
        f"GET {mirror.url}{NAME} (attempt 3/3): ok, {SIZE} bytes, SHA-256 verified",
    ]


@pytest.mark.parametrize("retries", [0, -1])
def test_no_attempts_at_all_is_refused_before_any_request(mirror, dest, retries):
    with pytest.raises(
        ValueError, match=f"retries is the attempts per mirror, at least 1; got {retries}"
    ):
        fetch([mirror.url], dest, retries=retries)
    assert mirror.requests == []
    assert not dest.exists()


def test_a_truncated_body_is_retried(mirror, dest):
    mirror.script(NAME, "truncate")
    lines = []
    fetch([mirror.url], dest, log=lines)
    assert_only_the_file(dest, BODY)
    assert len(mirror.requests) == 2
    assert f"connection closed after {SIZE // 2} of the {SIZE} bytes announced" in lines[0]


def test_a_chunked_body_cut_short_is_retried_and_said_to_be_cut(mirror, dest):
    """Without a Content-Length only the missing closing chunk shows the body was cut."""
    mirror.script(NAME, "chunked-truncate", "chunked")
    lines = []
    fetch([mirror.url], dest, log=lines)
    assert_only_the_file(dest, BODY)
    assert [r.headers["Content-Length"] for r in mirror.requests] == [None, None]
    assert lines[0] == (
        f"GET {mirror.url}{NAME} (attempt 1/3): body cut short: the connection closed before "
        f"the last chunk of the body (chunked transfer) after {SIZE // 2} of {SIZE} bytes; "
        "retrying in 0.001 s"
    )


def test_a_mirror_that_hangs_is_abandoned_for_the_next(dest):
    # A long body: its deadline, 2 s after the timeout, is not what ends these attempts.
    with LoopbackMirror({NAME: LONG_BODY, f"good/{NAME}": LONG_BODY}) as mirror:
        mirror.script(NAME, "hang:10", "hang:10")
        lines = []
        start = time.monotonic()
        url = fetch(
            [mirror.url, mirror.url + "good/"],
            dest,
            **LONG,
            log=lines,
            timeout=0.3,
            retries=2,
        )
    assert time.monotonic() - start < 3
    assert url == f"{mirror.url}good/{NAME}"
    assert_only_the_file(dest, LONG_BODY)
    assert lines[0].endswith("timed out: no answer within 0.3 s; retrying in 0.001 s")
    assert lines[1].endswith("timed out: no answer within 0.3 s")


def test_a_body_that_stalls_midway_is_abandoned_and_retried(dest):
    with LoopbackMirror({NAME: LONG_BODY}) as mirror:
        mirror.script(NAME, "stall:10")
        lines = []
        fetch(
            [mirror.url],
            dest,
            **LONG,
            log=lines,
            timeout=0.3,
        )
    assert_only_the_file(dest, LONG_BODY)
    assert f"timed out: no answer within 0.3 s after {len(LONG_BODY) // 2} of" in lines[0]


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
    assert_only_the_file(dest, BODY)


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
        fetch(mirrors, dest, log=lines, timeout=0.3, retries=2, **LONG)
    assert_nothing_left(dest)
    message = str(caught.value)
    assert message.startswith(
        f"Could not download {NAME} ({LONG['size']} bytes, SHA-256 {LONG['sha256']}) from any "
        "mirror. Tried:\n"
    )
    tried = [line for line in message.splitlines() if line.startswith("  - ")]
    assert [line.split(": ", 1)[0] for line in tried] == [
        f"  - {u}{NAME}" for u in mirror_urls(mirrors, "")
    ]
    reasons = [line.split(": ", 1)[1] for line in tried]
    assert reasons[0] == "HTTP 500 Internal Server Error (2 attempts)"
    assert reasons[1] == "HTTP 404 Not Found"
    assert reasons[2].startswith("got 17 bytes starting with '<html>nope</html>'")
    assert reasons[3].startswith("unsupported URL scheme 'ftp://'")
    assert reasons[4].startswith("cannot read the local file")
    assert reasons[5].startswith("connection failed:") and reasons[5].endswith("(2 attempts)")
    assert reasons[6] == "timed out: no answer within 0.3 s (2 attempts)"
    assert f"{WHAT_TO_DO} (are the base URLs right" in message
    assert f"pin their size and sha256 under {KEY}.files in an overlay config" in message
    assert len(lines) == 2 + 1 + 1 + 1 + 1 + 2 + 2


# --- slow mirrors: the deadline of an attempt -----------------------------------------------------


def deadline(timeout: float, size: int = SIZE) -> float:
    """An attempt's deadline as config/README.md states it: timeout + size at 100 kB/s."""
    return timeout + size / MIN_RATE


@pytest.mark.parametrize(
    ("behaviour", "arrived"), [("drip:0.05", "bytes in"), ("drip-headers:0.05", "0 of")]
)
def test_a_dripping_mirror_is_abandoned_at_the_deadline_for_the_next(
    mirror, dest, behaviour, arrived
):
    mirror.script(NAME, behaviour)
    lines = []
    start = time.monotonic()
    url = fetch([mirror.url, mirror.url + "good/"], dest, log=lines, timeout=0.5)
    elapsed = time.monotonic() - start
    assert url == f"{mirror.url}good/{NAME}"
    assert_only_the_file(dest, BODY)
    assert deadline(0.5) <= elapsed < deadline(0.5) + 1.5
    assert len(mirror.requests_for(NAME)) == 1, "a mirror too slow once is not tried again"
    assert lines[0].startswith(
        f"GET {mirror.url}{NAME} (attempt 1/3): gave up at the attempt's deadline of "
        f"{deadline(0.5):g} s (0.5 s + {SIZE} bytes at 100,000 bytes/s) with "
    )
    assert (
        arrived in lines[0] and "a slower link needs a larger download.timeout_seconds" in lines[0]
    )


def test_every_mirror_too_slow_fails_within_the_deadlines(mirror, dest):
    mirror.script(NAME, "drip:0.05")
    mirror.script(f"good/{NAME}", "drip-headers:0.05")
    start = time.monotonic()
    message = fails(
        [mirror.url, mirror.url + "good/"], dest, "gave up at the attempt's deadline", timeout=0.3
    )
    assert time.monotonic() - start < 2 * deadline(0.3) + 1.5
    assert message.count("the mirror is too slow") == 2


def test_a_steady_download_may_take_longer_than_the_timeout(dest):
    """The deadline counts the pinned size: 200 kB at 400 kB/s outlasts a 0.2 s timeout, fine."""
    with LoopbackMirror({NAME: LONG_BODY}) as server:
        server.script(NAME, f"drip:0.05:{len(LONG_BODY) // 10}")  # ten pieces, ~0.45 s
        lines = []
        start = time.monotonic()
        fetch([server.url], dest, log=lines, timeout=0.2, **LONG)
    assert 0.4 < time.monotonic() - start < deadline(0.2, len(LONG_BODY))
    assert_only_the_file(dest, LONG_BODY)
    assert lines == [
        f"GET {server.url}{NAME} (attempt 1/3): ok, {len(LONG_BODY)} bytes, SHA-256 verified"
    ]


# --- file:// serves regular files only ----------------------------------------------------------


def test_a_fifo_behind_a_file_mirror_is_refused_without_blocking(tmp_path, dest):
    folder = tmp_path / "mirror"
    folder.mkdir()
    os.mkfifo(folder / NAME)  # no writer: a blocking open or read would wait forever
    start = time.monotonic()
    message = fails([folder.as_uri()], dest, "is a named pipe \\(FIFO\\), not a regular file")
    assert time.monotonic() - start < 1
    assert (
        f"{folder / NAME} is a named pipe (FIFO), not a regular file; a file:// mirror serves "
        "regular files only" in message
    )
    assert "attempts" not in message


def test_a_directory_behind_a_file_mirror_is_refused(tmp_path, dest):
    folder = tmp_path / "mirror"
    (folder / NAME).mkdir(parents=True)
    fails(
        [folder.as_uri()],
        dest,
        f"{re.escape(str(folder / NAME))} is a directory, not a regular file",
    )


def test_a_device_behind_a_file_mirror_is_refused(tmp_path):
    dest = tmp_path / "null"
    with pytest.raises(
        DownloadError, match="/dev/null is a character device, not a regular file"
    ) as caught:
        fetch(["file:///dev"], dest, name="null")
    assert "  - file:///dev/null: cannot read the local file" in str(caught.value)
    assert WHAT_TO_DO in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_a_file_url_naming_another_host_is_refused(dest):
    fails(
        ["file://fileserver/mnist/"],
        dest,
        "a file:// URL names a file on this machine, not on host 'fileserver'",
    )


# --- retries: Retry-After, 408 and 429 ----------------------------------------------------------


def test_429_with_retry_after_waits_as_long_as_asked(mirror, dest):
    mirror.script(NAME, "429 retry-after:1")
    lines = []
    start = time.monotonic()
    fetch([mirror.url], dest, log=lines)
    assert time.monotonic() - start >= 1
    assert_only_the_file(dest, BODY)
    assert lines[0] == (
        f"GET {mirror.url}{NAME} (attempt 1/3): HTTP 429 Too Many Requests, Retry-After: 1; "
        "retrying in 1 s"
    )


def test_a_retry_after_longer_than_the_deadline_is_capped_by_it(mirror, dest):
    mirror.script(NAME, "retry-after:86400", "retry-after:99999999999999999999")
    lines = []
    start = time.monotonic()
    fetch([mirror.url], dest, log=lines, timeout=0.3)
    assert time.monotonic() - start < 2 * deadline(0.3) + 1
    assert_only_the_file(dest, BODY)
    assert lines[0] == (
        f"GET {mirror.url}{NAME} (attempt 1/3): HTTP 503 Service Unavailable, Retry-After: 86400 "
        f"(capped by the attempt's deadline); retrying in {deadline(0.3):g} s"
    )
    assert "Retry-After: 99999999999999999999 (capped" in lines[1]


def test_408_is_retried_with_backoff(mirror, dest):
    mirror.script(NAME, 408)
    lines = []
    fetch([mirror.url], dest, log=lines, backoff=0.05)
    assert (
        lines[0]
        == f"GET {mirror.url}{NAME} (attempt 1/3): HTTP 408 Request Timeout; retrying in 0.05 s"
    )
    assert len(mirror.requests) == 2


def test_huge_and_infinite_settings_do_not_overflow(mirror, dest):
    mirror.script(NAME, 500)
    start = time.monotonic()
    fetch([mirror.url], dest, backoff=1e308, timeout=0.3, retries=10**30)  # waits capped
    assert time.monotonic() - start < deadline(0.3) + 1
    dest.unlink()
    fetch([mirror.url], dest, timeout=float("inf"), backoff=float("inf"))
    assert_only_the_file(dest, BODY)


# --- redirects ----------------------------------------------------------------------------------


def test_a_redirect_to_http_is_followed_with_our_user_agent(mirror, dest):
    mirror.script(NAME, f"redirect:/good/{NAME}")
    assert fetch([mirror.url], dest) == mirror.url + NAME
    assert_only_the_file(dest, BODY)
    [redirected] = mirror.requests_for(f"good/{NAME}")
    assert redirected.headers["User-Agent"] == USER_AGENT


def test_a_redirect_to_ftp_is_refused(mirror, dest):
    mirror.script(NAME, "redirect:ftp://example.org/mnist/" + NAME)
    message = fails([mirror.url], dest, "redirects to ftp://example.org/mnist/")
    assert (
        f"HTTP 302 redirects to ftp://example.org/mnist/{NAME}, refused: only redirects to "
        "http:// and https:// are followed"
    ) in message
    assert len(mirror.requests) == 1


def test_a_redirect_loop_is_cut_short(mirror, dest):
    mirror.script(NAME, *[f"redirect:/{NAME}"] * 11)
    fails([mirror.url], dest, f"more than 10 redirects, the last to {re.escape(mirror.url + NAME)}")
    assert len(mirror.requests) == 11


# --- credentials and proxies --------------------------------------------------------------------


def test_a_mirror_password_is_sent_but_never_shown(mirror, dest):
    base = mirror.url.replace("http://", "http://reader:s%40cret@")
    shown = mirror.url.replace("http://", "http://reader:***@")
    mirror.script(NAME, 404)
    lines = []
    assert fetch([base, base + "good/"], dest, log=lines) == f"{shown}good/{NAME}"
    assert lines == [
        f"GET {shown}{NAME} (attempt 1/3): HTTP 404 Not Found",
        f"GET {shown}good/{NAME} (attempt 1/3): ok, {SIZE} bytes, SHA-256 verified",
    ]
    basic = "Basic " + base64.b64encode(b"reader:s@cret").decode()
    assert [r.headers["Authorization"] for r in mirror.requests] == [basic, basic]
    dest.unlink()
    mirror.script(NAME, 404)
    message = fails([base], dest, "HTTP 404 Not Found", log=lines)
    assert "cret" not in message + "".join(lines)


def test_an_unparsable_url_fails_without_showing_its_password(dest):
    message = fails(["http://reader:s3cret@127.0.0.1:99999/"], dest, "not a usable URL")
    assert "reader:***@127.0.0.1:99999" in message and "s3cret" not in message


@pytest.mark.parametrize(
    ("variable", "mirror_url"),
    [("HTTP_PROXY", None), ("HTTPS_PROXY", "https://mirror.invalid/mnist/")],
)
def test_an_unreachable_proxy_is_named_as_the_failure(
    mirror, dest, monkeypatch, variable, mirror_url
):
    port = free_port()
    monkeypatch.setenv(variable, f"http://proxyuser:hunter2@127.0.0.1:{port}/")
    lines = []
    message = fails([mirror_url or mirror.url], dest, "the proxy", log=lines, retries=1)
    assert (
        f"the proxy http://proxyuser:***@127.0.0.1:{port}/ (from {variable}) failed: connection "
        f"refused; check {variable}, or add the host to NO_PROXY to go direct"
    ) in message
    assert "connection failed" not in message, "the proxy's failure blamed on the mirror"
    assert "hunter2" not in message + "".join(lines)
    assert mirror.requests == []


# --- progress -------------------------------------------------------------------------------------


def test_a_long_download_logs_its_progress_and_a_short_one_does_not(dest):
    body = b"0123456789" * 4
    sha = hashlib.sha256(body).hexdigest()
    with LoopbackMirror({NAME: body}) as server:
        server.script(NAME, "drip:0.02")  # 40 bytes in about 0.8 s
        lines = []
        fetch([server.url], dest, size=len(body), sha256=sha, log=lines, progress_interval=0.2)
        progress = [line for line in lines if "bytes/s" in line]
        assert len(progress) >= 2, lines
        for line in progress:
            assert re.fullmatch(
                rf"GET {re.escape(server.url + NAME)}: \d+ of 40 bytes \(\d+%\), [\d,]+ bytes/s",
                line,
            ), line
        assert lines[-1].endswith("ok, 40 bytes, SHA-256 verified")
        dest.unlink()
        quick = []
        fetch([server.url], dest, size=len(body), sha256=sha, log=quick, progress_interval=0.2)
    assert quick == [f"GET {server.url}{NAME} (attempt 1/3): ok, 40 bytes, SHA-256 verified"]


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
            fetch_file(name, [mirror.url], size, sha, tmp_path / name, config_key=KEY, **QUICK)
            assert (tmp_path / name).read_bytes() == (SHARED_MNIST / name).read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(sums)
