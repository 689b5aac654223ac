"""Fetch one archive from a list of mirrors: size-capped, SHA-256 verified, written atomically.

One code path for `https://`, `http://` and `file://`: urllib's default opener, whose ProxyHandler
honours HTTP_PROXY, HTTPS_PROXY and NO_PROXY.
"""

import hashlib
import http.client
import logging
import re
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from itertools import groupby
from pathlib import Path

from .atomic import atomic_path
from .errors import MnistPipelineError

CHUNK = 1 << 20
SCHEMES = ("https", "http", "file")
HEAD_BYTES = 32  # how much of a wrong body an error message quotes

_LOG = logging.getLogger(__name__)


def _version() -> str:
    try:
        return metadata.version("mnist-pipeline")
    except metadata.PackageNotFoundError:
        return "dev"


USER_AGENT = f"mnist-pipeline/{_version()} (+reproducible MNIST workflow)"


class DownloadError(MnistPipelineError, RuntimeError):
    """No mirror delivered the archive with its pinned size and SHA-256, or the request was bad."""


class _AttemptFailed(Exception):
    """One attempt at one URL failed; `retry` says whether the same URL may do better next time."""

    def __init__(self, reason: str, retry: bool):
        super().__init__(reason)
        self.reason = reason
        self.retry = retry


def archive_urls(mirrors: Sequence[str], name: str) -> list[str]:
    """The archive's URL on each mirror: base URL (with or without a trailing "/") + name."""
    quoted = urllib.parse.quote(name)
    return [base + quoted if base.endswith("/") else f"{base}/{quoted}" for base in mirrors]


def fetch_archive(
    name: str,
    mirrors: Sequence[str],
    size: int,
    sha256: str,
    dest: str | Path,
    *,
    timeout: float = 30.0,
    retries: int = 3,
    backoff: float = 1.0,
    log: Callable[[str], None] = _LOG.info,
    dataset: str = "<dataset>",
) -> str:
    """Download `name` from the first mirror that serves exactly `size` bytes hashing to `sha256`.

    `dest` appears only once both match; on failure nothing is left behind. Up to `retries`
    attempts per mirror on 5xx, timeouts, broken connections and cut bodies, sleeping
    `backoff * 2**k` in between; other failures move on to the next mirror at once.
    Returns the URL used; raises DownloadError listing every URL tried and why it failed.
    `dataset` names the config entry (datasets.<dataset>) the messages point to.
    """
    _check_request(name, mirrors, size, sha256, timeout, retries, backoff, dataset)
    sha256 = sha256.lower()
    # Built per call: its ProxyHandler reads the *_PROXY variables when it is made.
    opener = urllib.request.build_opener()
    failures: list[tuple[str, str]] = []
    for url in archive_urls(mirrors, name):
        unsupported = _unsupported_scheme(url)
        if unsupported:
            log(f"{url}: skipped, {unsupported}")
            failures.append((url, unsupported))
            continue
        reasons: list[str] = []
        for attempt in range(1, retries + 1):
            try:
                _attempt(opener, url, size, sha256, Path(dest), timeout)
            except _AttemptFailed as failure:
                reasons.append(failure.reason)
                again = failure.retry and attempt < retries
                wait = backoff * 2 ** (attempt - 1)
                then = f"; retrying in {wait:g} s" if again else ""
                log(f"GET {url} (attempt {attempt}/{retries}): {failure.reason}{then}")
                if not again:
                    break
                time.sleep(wait)
            else:
                log(f"GET {url} (attempt {attempt}/{retries}): ok, {size} bytes, SHA-256 verified")
                return url
        failures.append((url, _summary(reasons)))
    raise DownloadError(_failure_message(name, size, sha256, failures, dataset))


def _check_request(
    name: str,
    mirrors: Sequence[str],
    size: int,
    sha256: str,
    timeout: float,
    retries: int,
    backoff: float,
    dataset: str,
) -> None:
    problems = []
    if isinstance(mirrors, str) or not mirrors:
        problems.append(f"mirrors must be a non-empty list of base URLs; found {mirrors!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        problems.append(f"size must be a positive whole number of bytes; found {size!r}")
    if not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        problems.append(f"sha256 must be 64 hex digits; found {sha256!r}")
    if not timeout > 0:
        problems.append(f"timeout must be more than 0 seconds; found {timeout!r}")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 1:
        problems.append(f"retries must be a whole number of at least 1; found {retries!r}")
    if not backoff >= 0:
        problems.append(f"backoff must be 0 seconds or more; found {backoff!r}")
    if problems:
        raise DownloadError(
            f"Cannot download {name}: " + "; ".join(problems) + f". Check datasets.{dataset} "
            "(mirrors, files) and download (timeout_seconds, retries, backoff_seconds) in the "
            "config."
        )


def _unsupported_scheme(url: str) -> str | None:
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme in SCHEMES:
        return None
    if not scheme:
        return "no URL scheme; write https://..., http://... or file:///absolute/folder/"
    return f"unsupported URL scheme '{scheme}://'; use https://, http:// or file://"


def _attempt(
    opener: urllib.request.OpenerDirector,
    url: str,
    size: int,
    sha256: str,
    dest: Path,
    timeout: float,
) -> None:
    """One GET of `url` streamed into `dest`; raise _AttemptFailed unless size and hash match."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    with _open(opener, request, timeout) as response:
        announced = _content_length(response)
        if announced is not None and announced > size:
            raise _AttemptFailed(
                f"the server announces {announced} bytes (Content-Length); expected {size} bytes",
                retry=False,
            )
        with atomic_path(dest) as tmp:
            digest = hashlib.sha256()
            got = 0
            head = b""
            with open(tmp, "wb") as out:
                for chunk in _body(response, size, timeout, request.type):
                    head += chunk[: HEAD_BYTES - len(head)]
                    got += len(chunk)
                    digest.update(chunk)
                    out.write(chunk)
            _verify(got, announced, head, digest.hexdigest(), size, sha256)


def _open(opener: urllib.request.OpenerDirector, request: urllib.request.Request, timeout: float):
    try:
        return opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        error.close()
        raise _AttemptFailed(f"HTTP {error.code} {error.reason}", retry=error.code >= 500) from None
    except urllib.error.URLError as error:
        raise _network_failure(error.reason, request.type, timeout) from None
    except (OSError, http.client.HTTPException) as error:
        raise _network_failure(error, request.type, timeout) from None


def _body(response, size: int, timeout: float, scheme: str) -> Iterator[bytes]:
    """The response body in chunks of at most CHUNK bytes, never more than size + 1 in all."""
    got = 0
    while got <= size:
        try:
            chunk = response.read(min(CHUNK, size + 1 - got))
        except http.client.IncompleteRead as error:
            raise _AttemptFailed(
                f"body cut short: the connection closed after {got + len(error.partial)} bytes",
                retry=True,
            ) from None
        except (OSError, http.client.HTTPException) as error:
            failure = _network_failure(error, scheme, timeout)
            raise _AttemptFailed(
                f"{failure.reason} after {got} of {size} bytes", failure.retry
            ) from None
        if not chunk:
            return
        got += len(chunk)
        yield chunk


def _network_failure(error: object, scheme: str, timeout: float) -> _AttemptFailed:
    if isinstance(error, TimeoutError):
        return _AttemptFailed(f"timed out: no answer within {timeout:g} s", retry=True)
    if scheme == "file":
        return _AttemptFailed(f"cannot read the local file: {error}", retry=False)
    if isinstance(error, ssl.SSLCertVerificationError):
        return _AttemptFailed(f"TLS certificate rejected: {error.verify_message}", retry=False)
    return _AttemptFailed(f"connection failed: {error or type(error).__name__}", retry=True)


def _content_length(response) -> int | None:
    value = response.headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


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
    name: str, size: int, sha256: str, failures: list[tuple[str, str]], dataset: str
) -> str:
    tried = "\n".join(f"  - {url}: {reason}" for url, reason in failures)
    return (
        f"Could not download {name} ({size} bytes, SHA-256 {sha256}) from any mirror. Tried:\n"
        f"{tried}\n"
        f"What to do: check datasets.{dataset}.mirrors in the config (are the base URLs right and "
        "reachable from here? a proxy goes in HTTP_PROXY/HTTPS_PROXY); if you serve your own "
        f"copies, pin their size and sha256 under datasets.{dataset}.files in an overlay config "
        "(snakemake --configfile my-mirror.yaml)."
    )
