"""Fetch one file from a list of mirrors: size-capped, SHA-256 verified, atomic, on a deadline.

`http://` and `https://` go through urllib3, via the proxy HTTP_PROXY / HTTPS_PROXY names unless
NO_PROXY exempts the host (read as urllib reads them); `file://` reads a regular local file.
Every attempt has a deadline (attempt_deadline): when it passes, a timer shuts the attempt's socket
down, so a server that sends its headers or its body a byte at a time cannot hold a run for longer.
"""

import hashlib
import http.client
import logging
import os
import socket
import ssl
import stat
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from importlib import metadata
from itertools import groupby
from pathlib import Path

from urllib3 import BaseHTTPResponse, PoolManager, ProxyManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    InvalidHeader,
    LocationValueError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.util import Retry, Timeout, Url, make_headers, parse_url

from .atomic import atomic_path
from .errors import MnistPipelineError
from .progress import INTERVAL, Progress

CHUNK = 1 << 20
SCHEMES = ("https", "http", "file")
REDIRECT_SCHEMES = ("https", "http")  # a redirect elsewhere (ftp://, file://) is refused
MAX_REDIRECTS = 10
MIN_RATE = 100_000  # bytes/s: an attempt's deadline allows the pinned size at this rate
HEAD_BYTES = 32  # how much of a wrong body an error message quotes
# The longest wait the platform's clocks can hold (~292 years); longer ones raise OverflowError.
LONGEST_WAIT = threading.TIMEOUT_MAX

_LOG = logging.getLogger(__name__)


def _version() -> str:
    try:
        return metadata.version("mnist-pipeline")
    except metadata.PackageNotFoundError:
        return "dev"


USER_AGENT = f"mnist-pipeline/{_version()} (+reproducible MNIST workflow)"


class DownloadError(MnistPipelineError, RuntimeError):
    """No mirror delivered the file with its pinned size and SHA-256."""


class _AttemptFailed(Exception):
    """One attempt at one URL failed; `retry` says whether the same URL may do better next time,
    `wait` how long the server asked to be left alone first (Retry-After), if it did."""

    def __init__(self, reason: str, retry: bool, wait: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry = retry
        self.wait = wait


def attempt_deadline(timeout: float, size: int) -> float:
    """Seconds one attempt may take in all: `timeout`, plus `size` bytes at MIN_RATE bytes/s."""
    return min(timeout + size / MIN_RATE, LONGEST_WAIT)


def mirror_urls(mirrors: Sequence[str], name: str) -> list[str]:
    """The file's URL on each mirror: base URL (with or without a trailing "/") + name."""
    quoted = urllib.parse.quote(name)
    return [base + quoted if base.endswith("/") else f"{base}/{quoted}" for base in mirrors]


def redact(url: str, text: str | None = None) -> str:
    """`text` (by default `url` itself) with the password in `url`'s user part shown as ***."""
    text = url if text is None else text
    userinfo = urllib.parse.urlsplit(url).netloc.rpartition("@")[0]
    if ":" not in userinfo:
        return text
    return text.replace(f"{userinfo}@", f"{userinfo.partition(':')[0]}:***@")


def fetch_file(
    name: str,
    mirrors: Sequence[str],
    size: int,
    sha256: str,
    dest: str | Path,
    *,
    config_key: str | Sequence[str],
    pins_key: str | Sequence[str] | None = None,
    note: str | None = None,
    timeout: float = 30.0,
    retries: int = 3,
    backoff: float = 1.0,
    log: Callable[[str], object] = _LOG.info,
    progress_interval: float = INTERVAL,
) -> str:
    """Download `name` from the first mirror that serves exactly `size` bytes hashing to `sha256`.

    `dest` appears only once both match; on failure nothing is left behind. Each attempt ends by
    attempt_deadline(timeout, size) and waits at most `timeout` for any one answer. Up to `retries`
    attempts per mirror on 408, 429, 5xx, timeouts, broken connections and cut bodies, waiting
    `backoff` seconds, doubling, or what the server's Retry-After asks; no wait is longer than
    the deadline. Other failures, a passed deadline among them, move on to the next mirror.
    A long download logs its progress every `progress_interval` seconds.
    Returns the URL used (password redacted); raises DownloadError listing every URL tried and
    why it failed, then `note` (what the config says about these mirrors, if anything), pointing
    to `config_key`.mirrors, to the pins under `pins_key` (each may be several keys: a bundle
    serves several datasets) and to a private mirror.
    """
    if retries < 1:  # no attempt at all would fail with no reason to give
        raise ValueError(f"retries is the attempts per mirror, at least 1; got {retries}")
    sha256 = sha256.lower()
    deadline = attempt_deadline(timeout, size)
    failures: list[tuple[str, str]] = []
    for url in mirror_urls(mirrors, name):
        shown = redact(url)
        unsupported = _unsupported_scheme(url)
        if unsupported:
            log(f"{shown}: skipped, {unsupported}")
            failures.append((shown, unsupported))
            continue
        reasons: list[str] = []
        backoff_wait = min(backoff, deadline)
        for attempt in range(1, retries + 1):
            progress = Progress(f"GET {shown}", size, "bytes", log, interval=progress_interval)
            try:
                _attempt(url, size, sha256, Path(dest), timeout, progress)
            except _AttemptFailed as failure:
                failure.reason = redact(url, failure.reason)  # urllib3 may quote the URL
                reasons.append(failure.reason)
                again = failure.retry and attempt < retries
                wait = backoff_wait if failure.wait is None else failure.wait
                then = f"; retrying in {wait:g} s" if again else ""
                log(f"GET {shown} (attempt {attempt}/{retries}): {failure.reason}{then}")
                if not again:
                    break
                time.sleep(wait)
                backoff_wait = min(2 * backoff_wait, deadline)
            else:
                log(
                    f"GET {shown} (attempt {attempt}/{retries}): ok, {size} bytes, SHA-256 verified"
                )
                return shown
        failures.append((shown, _summary(reasons)))
    raise DownloadError(
        _failure_message(name, size, sha256, failures, config_key, pins_key or config_key, note)
    )


def _unsupported_scheme(url: str) -> str | None:
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme in SCHEMES:
        return None
    if not scheme:
        return "no URL scheme; write https://..., http://... or file:///absolute/folder/"
    return f"unsupported URL scheme '{scheme}://'; use https://, http:// or file://"


# --- one attempt ---------------------------------------------------------------------------------


class _Deadline:
    """The end of one attempt: a timer shuts down the socket of the watched connection then."""

    def __init__(self, timeout: float, size: int):
        self.timeout, self.size = timeout, size
        self.seconds = attempt_deadline(timeout, size)
        self.end = time.monotonic() + self.seconds
        self._lock = threading.Lock()
        self._expired = False
        self._connection: HTTPConnection | None = None
        self._timer = threading.Timer(self.seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> "_Deadline":
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()

    @property
    def passed(self) -> bool:
        return self._expired or time.monotonic() >= self.end

    def remaining(self) -> float:
        return max(self.end - time.monotonic(), 0.0)

    def watch(self, connection: HTTPConnection) -> None:
        """Shut `connection` down when the deadline passes (at once if it has)."""
        with self._lock:
            self._connection = connection
            if self._expired:
                _shutdown(connection)

    def check(self, got: int) -> None:
        """Raise the attempt's failure if the deadline has passed, with `got` bytes in."""
        if self.passed:
            raise _AttemptFailed(
                f"gave up at the attempt's deadline of {self.seconds:g} s ({self.timeout:g} s + "
                f"{self.size} bytes at {MIN_RATE:,} bytes/s) with {got} of {self.size} bytes in: "
                "the mirror is too slow (a slower link needs a larger download.timeout_seconds)",
                retry=False,
            )

    def _expire(self) -> None:
        with self._lock:
            self._expired = True
            if self._connection is not None:
                _shutdown(self._connection)


def _shutdown(connection: HTTPConnection) -> None:
    """End the connection's blocking reads and writes, from any thread."""
    sock = connection.sock
    raw = sock if isinstance(sock, socket.socket) else getattr(sock, "socket", None)
    if raw is not None:
        # The plain socket's shutdown: an SSLSocket's own would unwrap it under a reader.
        with suppress(OSError):  # closed already
            socket.socket.shutdown(raw, socket.SHUT_RDWR)


def _attempt(
    url: str, size: int, sha256: str, dest: Path, timeout: float, progress: Progress
) -> None:
    """One GET of `url` streamed into `dest`; raise _AttemptFailed unless size and hash match."""
    with _Deadline(timeout, size) as deadline:
        try:
            opened = (
                _open_file(url) if url.lower().startswith("file:") else _open_http(url, deadline)
            )
            with opened as (announced, read):
                _save(read, announced, size, sha256, dest, progress, deadline)
        except _AttemptFailed:
            deadline.check(progress.done)  # whatever broke, the deadline is why
            raise


def _save(
    read: Callable[[int], bytes],
    announced: int | None,
    size: int,
    sha256: str,
    dest: Path,
    progress: Progress,
    deadline: _Deadline,
) -> None:
    """Stream `read` into `dest` through a temporary file: never more than size + 1 bytes."""
    if announced is not None and announced > size:
        raise _AttemptFailed(
            f"the server announces {announced} bytes (Content-Length); expected {size} bytes",
            retry=False,
        )
    with atomic_path(dest) as tmp, open(tmp, "wb") as out:
        digest = hashlib.sha256()
        head = b""
        while progress.done <= size:
            try:
                chunk = read(min(CHUNK, size + 1 - progress.done))
            except _AttemptFailed as failure:
                failure.reason += f" after {progress.done} of {size} bytes"
                raise
            if not chunk:
                break
            head += chunk[: HEAD_BYTES - len(head)]
            digest.update(chunk)
            out.write(chunk)
            progress.update(len(chunk))
            deadline.check(progress.done)
        _verify(progress.done, announced, head, digest.hexdigest(), size, sha256)


def _verify(
    got: int, announced: int | None, head: bytes, found: str, size: int, sha256: str
) -> None:
    if announced is not None and got < announced:
        raise _AttemptFailed(
            f"body cut short: the connection closed after {got} of the {announced} bytes "
            "announced (Content-Length)",
            retry=True,
        )
    if got > size:
        raise _AttemptFailed(
            f"more than the expected {size} bytes arrived; stopped reading there", retry=False
        )
    if got != size:
        raise _AttemptFailed(
            f"got {got} bytes{_describe(head)}; expected {size} bytes", retry=False
        )
    if found != sha256:
        raise _AttemptFailed(
            f"SHA-256 mismatch: found {found}, expected {sha256} (the size, {size} bytes, matched)",
            retry=False,
        )


# --- file:// ------------------------------------------------------------------------------------

_NOT_REGULAR = {
    stat.S_ISDIR: "a directory",
    stat.S_ISFIFO: "a named pipe (FIFO)",
    stat.S_ISCHR: "a character device",
    stat.S_ISBLK: "a block device",
    stat.S_ISSOCK: "a socket",
}


@contextmanager
def _open_file(url: str) -> Iterator[tuple[None, Callable[[int], bytes]]]:
    """The local file `url` names, if it is a regular file: (no announced size, read)."""
    parts = urllib.parse.urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise _AttemptFailed(
            f"a file:// URL names a file on this machine, not on host '{parts.netloc}'; "
            "write file:///absolute/folder/",
            retry=False,
        )
    path = urllib.request.url2pathname(parts.path)
    try:
        # O_NONBLOCK: opening a FIFO returns at once instead of waiting for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as error:
        raise _AttemptFailed(f"cannot read the local file: {error}", retry=False) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = next((kind for test, kind in _NOT_REGULAR.items() if test(mode)), "no file")
        raise _AttemptFailed(
            f"cannot read the local file: {path} is {kind}, not a regular file; a file:// "
            "mirror serves regular files only",
            retry=False,
        )
    os.set_blocking(fd, True)
    with os.fdopen(fd, "rb", buffering=0) as file:

        def read(amount: int) -> bytes:
            try:
                return file.read(amount)
            except OSError as error:
                raise _AttemptFailed(f"cannot read the local file: {error}", retry=False) from None

        yield None, read


# --- http:// and https:// ------------------------------------------------------------------------


@contextmanager
def _open_http(
    url: str, deadline: _Deadline
) -> Iterator[tuple[int | None, Callable[[int], bytes]]]:
    """The 200 response of `url` after redirects: (its Content-Length, read)."""
    response = _follow_redirects(url, deadline)
    try:
        if response.status != 200:
            raise _status_failure(response, deadline.seconds)
        announced = _content_length(response)

        def read(amount: int) -> bytes:
            try:
                return response.read1(amount)
            except ProtocolError as error:
                # http.client's IncompleteRead (urllib3's derives from it): the body ended early.
                if not isinstance(error.__context__, http.client.IncompleteRead):
                    raise _network_failure(error, deadline.timeout) from None
                if announced is not None:
                    return b""  # _verify says so with the counts
                raise _AttemptFailed(
                    "body cut short: the connection closed before the last chunk of the body "
                    "(chunked transfer)",
                    retry=True,
                ) from None
            except (HTTPError, OSError) as error:
                raise _network_failure(error, deadline.timeout) from None

        yield announced, read
    finally:
        response.close()


def _follow_redirects(url: str, deadline: _Deadline) -> BaseHTTPResponse:
    for _ in range(MAX_REDIRECTS + 1):
        response = _get(url, deadline)
        location = response.get_redirect_location()
        if not location:
            return response
        response.close()
        target = urllib.parse.urljoin(url, location)
        scheme = urllib.parse.urlsplit(target).scheme.lower()
        if scheme not in REDIRECT_SCHEMES:
            raise _AttemptFailed(
                f"HTTP {response.status} redirects to {redact(target)}, refused: only "
                "redirects to http:// and https:// are followed",
                retry=False,
            )
        url = target
    raise _AttemptFailed(f"more than {MAX_REDIRECTS} redirects, the last to {redact(url)}", False)


def _get(url: str, deadline: _Deadline) -> BaseHTTPResponse:
    """Send GET `url` (user:password in it as basic auth) and read the response's headers."""
    deadline.check(0)  # a redirect found after the deadline is not followed
    try:
        target = parse_url(url)
    except LocationValueError as error:
        raise _AttemptFailed(f"not a usable URL: {error}", retry=False) from None
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if target.auth:
        headers |= make_headers(basic_auth=urllib.parse.unquote(target.auth))
    proxy = _proxy_for(target)
    # Per-answer waits: timeout, though never past the deadline (which the timer enforces).
    connect = max(min(deadline.timeout, deadline.remaining()), 1e-3)
    read = max(min(deadline.timeout, deadline.seconds), 1e-3)
    try:
        with _manager(proxy, deadline) as manager:
            return manager.urlopen(
                "GET",
                target._replace(auth=None).url,
                headers=headers,
                retries=False,
                redirect=False,
                preload_content=False,
                decode_content=False,
                timeout=Timeout(connect=connect, read=read),
            )
    except ProxyError as error:
        assert proxy is not None
        variable = f"{target.scheme.upper()}_PROXY"
        raise _AttemptFailed(
            f"the proxy {redact(proxy.url)} (from {variable}) failed: {_cause(error)}; check "
            f"{variable}, or add the host to NO_PROXY to go direct",
            retry=True,
        ) from None
    except LocationValueError as error:
        raise _AttemptFailed(f"not a usable URL: {error}", retry=False) from None
    except (HTTPError, OSError) as error:
        raise _network_failure(error, deadline.timeout) from None


def _proxy_for(target: Url) -> Url | None:
    """The proxy urllib would use for `target`: *_PROXY by scheme, unless NO_PROXY lists it."""
    proxy = urllib.request.getproxies().get(target.scheme)
    if not proxy or urllib.request.proxy_bypass(target.netloc):
        return None
    return parse_url(proxy if "://" in proxy else f"http://{proxy}")


class _WatchedConnection:
    """Mixin: a connection that its attempt's deadline can shut down, from its first byte."""

    def __init__(self, *args, deadline: _Deadline, **kwargs):
        super().__init__(*args, **kwargs)
        self.deadline = deadline

    def connect(self) -> None:
        self.deadline.watch(self)  # from the TCP handshake's end on: TLS, proxy tunnel, headers
        super().connect()
        self.deadline.watch(self)  # again, in case it passed before there was a socket to shut


class _WatchedHTTPConnection(_WatchedConnection, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_WatchedConnection, HTTPSConnection):
    pass


class _WatchedPools:
    """Mixin for urllib3's pool managers: their connections are watched by `deadline`."""

    def __init__(self, deadline: _Deadline, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.deadline = deadline

    def _new_pool(self, scheme, host, port, request_context=None) -> HTTPConnectionPool:
        pool = super()._new_pool(scheme, host, port, request_context)
        https = issubclass(pool.ConnectionCls, HTTPSConnection)
        pool.ConnectionCls = _WatchedHTTPSConnection if https else _WatchedHTTPConnection
        pool.conn_kw["deadline"] = self.deadline
        return pool


class _Direct(_WatchedPools, PoolManager):
    pass


class _Proxied(_WatchedPools, ProxyManager):
    pass


def _manager(proxy: Url | None, deadline: _Deadline) -> PoolManager:
    if proxy is None:
        return _Direct(deadline)
    auth = make_headers(proxy_basic_auth=urllib.parse.unquote(proxy.auth)) if proxy.auth else None
    return _Proxied(deadline, proxy._replace(auth=None).url, proxy_headers=auth)


def _status_failure(response: BaseHTTPResponse, longest_wait: float) -> _AttemptFailed:
    """HTTP 4xx/5xx: retried on 408, 429 and 5xx, after the Retry-After the server asks for."""
    code = response.status
    reason = f"HTTP {code} {response.reason}"
    if not (code in (408, 429) or code >= 500):
        return _AttemptFailed(reason, retry=False)
    asked = response.headers.get("Retry-After")
    try:
        wait = Retry().get_retry_after(response)  # seconds, or an HTTP date from now
    except InvalidHeader:
        wait = None
    if wait is None:
        return _AttemptFailed(reason, retry=True)
    capped = " (capped by the attempt's deadline)" if wait >= longest_wait else ""
    wait = min(wait, longest_wait)
    return _AttemptFailed(f"{reason}, Retry-After: {asked}{capped}", retry=True, wait=wait)


def _content_length(response: BaseHTTPResponse) -> int | None:
    value = response.headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _network_failure(error: BaseException, timeout: float) -> _AttemptFailed:
    if isinstance(error, ConnectTimeoutError) and not isinstance(error, NewConnectionError):
        return _AttemptFailed(f"timed out: no connection within {timeout:g} s", retry=True)
    if isinstance(error, ReadTimeoutError | TimeoutError):
        return _AttemptFailed(f"timed out: no answer within {timeout:g} s", retry=True)
    cause = _innermost(error)
    if isinstance(cause, ssl.SSLCertVerificationError):
        return _AttemptFailed(f"TLS certificate rejected: {cause.verify_message}", retry=False)
    if isinstance(error, SSLError):
        return _AttemptFailed(f"TLS failed: {_cause(error)}", retry=True)
    return _AttemptFailed(f"connection failed: {_cause(error)}", retry=True)


def _innermost(error: BaseException) -> BaseException:
    """The exception at the bottom of urllib3's wrapping (its original_error, cause, context)."""
    seen = {id(error)}
    while True:
        inner = getattr(error, "original_error", None) or error.__cause__ or error.__context__
        if inner is None or id(inner) in seen:
            return error
        seen.add(id(inner))
        error = inner


def _cause(error: BaseException) -> str:
    cause = _innermost(error)
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror[0].lower() + cause.strerror[1:]
    return str(cause) or type(cause).__name__


# --- messages ------------------------------------------------------------------------------------


def _describe(head: bytes) -> str:
    """' starting with ...' for an error message: the text, or the first bytes in hex."""
    if not head:
        return ""
    text = " ".join(head.decode("latin-1").split())
    if not (head.isascii() and text.isprintable()):
        return f" starting with bytes {head[:8].hex(' ')}"
    described = f" starting with '{text}'..."
    if text.startswith("<"):
        described += " (a web page, not the archive: an error or login page served as 200?)"
    return described


def _summary(reasons: list[str]) -> str:
    """Each distinct reason in order, with how many attempts ended that way."""
    return "; then ".join(
        reason if count == 1 else f"{reason} ({count} attempts)"
        for reason, count in ((reason, len(list(group))) for reason, group in groupby(reasons))
    )


def _failure_message(
    name: str,
    size: int,
    sha256: str,
    failures: list[tuple[str, str]],
    config_key: str | Sequence[str],
    pins_key: str | Sequence[str],
    note: str | None,
) -> str:
    tried = "\n".join(f"  - {url}: {reason}" for url, reason in failures)
    about = f"About these mirrors: {note}\n" if note else ""
    return (
        f"Could not download {name} ({size} bytes, SHA-256 {sha256}) from any mirror. Tried:\n"
        f"{tried}\n{about}"
        f"What to do: check {_keys(config_key, '.mirrors')} in the config (are the base URLs "
        "right and reachable from here? a proxy goes in HTTP_PROXY/HTTPS_PROXY); if you serve "
        f"your own copies, pin their size and sha256 under {_keys(pins_key)} in an overlay "
        "config and run snakemake --cores 4 --configfile my-mirror.yaml (config/README.md, "
        'section "A private mirror", shows how).'
    )


def _keys(keys: str | Sequence[str], leaf: str = "") -> str:
    """One config key, or several: "a.mirrors", "a.mirrors and b.mirrors"."""
    keys = [keys] if isinstance(keys, str) else list(keys)
    return " and ".join(f"{key}{leaf}" for key in keys)
