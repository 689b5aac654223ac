"""A loopback web server for tests: serves files, misbehaves on cue, records every request.

    with LoopbackMirror({"a.gz": data}) as mirror:
        mirror.script("a.gz", 500, "truncate")  # the next two GETs fail, then normal service
        fetch(mirror.url + "a.gz")
        mirror.requests  # what arrived: target as sent (an absolute URL through a proxy), headers

Behaviours, each used for one request of its path:
  "ok"                the file (404 if there is none)
  N or "N"            status N with a one-line text body
  "html"              status 200 with an HTML error page instead of the file
  "truncate"          the file's full Content-Length, half the body, then the connection closes
  "chunked[-truncate]" the file in chunked transfer encoding (no Content-Length); "-truncate":
                      half of it, then the connection closes before the closing chunk
  "hang[:S]"          wait S seconds (default 5) before answering normally
  "stall[:S]"         headers and half the body, then wait S seconds (default 5) and close
  "nolength"          the file without Content-Length, ended by closing the connection
  "endless"           200 without Content-Length, the file's bytes repeated up to ENDLESS_CAP bytes
  "drip[:S[:N]]"      headers, then the body N bytes (default 1) every S seconds (default 0.4)
  "drip-headers[:S]"  the status line and headers one byte every S seconds (default 0.4), then
                      the file
  "[N ]retry-after:V" status N (default 503) with the header Retry-After: V (seconds or a date)
  "redirect:URL"      302 Found to URL (absolute, or relative to the request)
Waits end early when the mirror closes, so a hanging handler never delays a test's teardown.
"""

import os
import threading
from collections import defaultdict, deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from email.message import Message
from functools import partial
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>503 Service Unavailable</title></head>\n"
    b"<body><h1>Service Unavailable</h1><p>Please try again later.</p></body></html>\n"
)
DEFAULT_WAIT = 5.0
DEFAULT_DRIP = 0.4
MAX_WAIT = 60.0
ENDLESS_CAP = 1 << 28
WRITE_CHUNK = 1 << 16
FILE_CHUNK = 1 << 20  # bytes read from disk at a time
NAMED = (
    "ok",
    "html",
    "truncate",
    "hang",
    "stall",
    "nolength",
    "endless",
    "chunked",
    "chunked-truncate",
)
TIMED = ("hang", "stall", "drip", "drip-headers")  # take an optional ":seconds"


@dataclass
class Request:
    """One request as the mirror received it."""

    method: str
    target: str  # the request line's target: "/a.gz", or "http://host/a.gz" through a proxy
    headers: Message  # case-insensitive: headers["User-Agent"]
    key: str  # the file path it asked for, without the mirror's prefix
    behaviour: str
    sent: int = 0  # body bytes handed to the socket before the client hung up
    done: threading.Event = field(default_factory=threading.Event, repr=False)


class LoopbackMirror:
    """An HTTP server on 127.0.0.1 (free port, daemon threads) serving `files` under `url`.

    `files` maps a path without leading slash to bytes or to a file on disk; it may be changed
    while the mirror runs. `prefix` puts every file under a sub-path of the URL.
    """

    def __init__(self, files: Mapping[str, bytes | Path] | None = None, prefix: str = ""):
        self.files: dict[str, bytes | Path] = dict(files or {})
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.requests: list[Request] = []
        self._scripts: dict[str, deque[str]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def from_directory(cls, folder: str | Path, prefix: str = "") -> "LoopbackMirror":
        """A mirror of every file under `folder` (read from disk on each request)."""
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"LoopbackMirror.from_directory: no folder at {folder}")
        files = {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()}
        return cls(files, prefix=prefix)

    @property
    def url(self) -> str:
        """Base URL of the files, ending in "/"."""
        if self._server is None:
            raise RuntimeError("LoopbackMirror.url: the mirror is not running; use `with`")
        return f"http://127.0.0.1:{self._server.server_address[1]}/{self.prefix}"

    def script(self, path: str, *behaviours: str | int) -> None:
        """Queue behaviours for the next requests of `path`, one per request."""
        checked = [_check_behaviour(b) for b in behaviours]
        with self._lock:
            self._scripts[path.lstrip("/")].extend(checked)

    def requests_for(self, path: str) -> list[Request]:
        """The requests that asked for `path` so far."""
        with self._lock:
            return [r for r in self.requests if r.key == path.lstrip("/")]

    def start(self) -> "LoopbackMirror":
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.mirror = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()

    def __enter__(self) -> "LoopbackMirror":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def _next(self, key: str) -> str:
        with self._lock:
            queue = self._scripts.get(key)
            return queue.popleft() if queue else "ok"

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def _body(self, key: str) -> bytes | None:
        body = self.files.get(key)
        return body.read_bytes() if isinstance(body, Path) else body


def _check_behaviour(behaviour: str | int) -> str:
    text = str(behaviour)
    name, _, seconds = text.partition(":")
    if text.isdigit() and 100 <= int(text) <= 599:
        return text
    seconds, _, piece = seconds.partition(":") if name == "drip" else (seconds, "", "")
    if name in TIMED and (not seconds or _is_number(seconds)) and (not piece or piece.isdigit()):
        return text
    if name in NAMED and not seconds:
        return text
    if name == "redirect" and seconds:
        return text
    status, _, retry_after = _retry_after(text)
    if 100 <= status <= 599 and retry_after:
        return text
    raise ValueError(
        f"LoopbackMirror.script: unknown behaviour {behaviour!r}; expected a status 100-599, "
        "'[status ]retry-after:value', 'redirect:url', "
        f"{', '.join(f'{t}[:seconds]' for t in TIMED)} or one of {', '.join(NAMED)}"
    )


def _retry_after(text: str) -> tuple[int, str, str]:
    """ "429 retry-after:5" -> (429, "retry-after", "5"); the status defaults to 503."""
    status, _, rest = text.partition(" ") if text[:3].isdigit() else ("503", "", text)
    name, _, value = rest.partition(":")
    if not status.isdigit() or name != "retry-after":
        return 0, name, ""
    return int(status), name, value.strip()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    mirror: LoopbackMirror

    def handle_error(self, request, client_address) -> None:
        """Stay quiet: clients that hang up early are what these tests are about."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 30  # a client that connects and says nothing does not hold a thread forever

    def log_message(self, format, *args) -> None:
        """No request logging to stderr."""

    def do_GET(self) -> None:
        mirror = self.server.mirror
        path = unquote(urlsplit(self.path).path).lstrip("/")
        key = path.removeprefix(mirror.prefix) if path.startswith(mirror.prefix) else None
        behaviour = mirror._next(key) if key is not None else "ok"
        record = Request(self.command, self.path, self.headers, key or "", behaviour)
        mirror._record(record)
        try:
            self._serve(mirror, record, key)
        finally:
            record.done.set()

    def _serve(self, mirror: LoopbackMirror, record: Request, key: str | None) -> None:
        name, _, argument = record.behaviour.partition(":")
        if name == "redirect":
            self._send(record, HTTPStatus.FOUND, b"", headers={"Location": argument})
            return
        status, _, retry_after = _retry_after(record.behaviour)
        if retry_after:
            body = f"{status} Come back later\n".encode()
            self._send(record, HTTPStatus(status), body, headers={"Retry-After": retry_after})
            return
        default = DEFAULT_DRIP if name.startswith("drip") else DEFAULT_WAIT
        argument, _, piece = argument.partition(":")
        wait = min(float(argument or default), MAX_WAIT)
        if name.isdigit():
            status = HTTPStatus(int(name))
            self._send(record, status, f"{status.value} {status.phrase}\n".encode(), "text/plain")
            return
        if name == "html":
            self._send(record, HTTPStatus.OK, HTML_PAGE, "text/html")
            return
        if name == "hang":
            mirror._closing.wait(wait)
        if name in ("ok", "hang") and isinstance(mirror.files.get(key), Path):
            self._send_file(record, mirror.files[key])
            return
        body = mirror._body(key) if key is not None else None
        if body is None:
            self._send(record, HTTPStatus.NOT_FOUND, b"404 Not Found\n", "text/plain")
        elif name == "truncate":
            self._send(record, HTTPStatus.OK, body, length=len(body), cut=len(body) // 2)
        elif name == "stall":
            self._send(record, HTTPStatus.OK, body, length=len(body), cut=len(body) // 2)
            mirror._closing.wait(wait)
        elif name == "nolength":
            self._send(record, HTTPStatus.OK, body, length=None)
        elif name.startswith("chunked"):
            self._send_chunked(
                record, body, cut=len(body) // 2 if name.endswith("truncate") else None
            )
        elif name == "endless":
            self._send_chunks(record, HTTPStatus.OK, _repeat(body or b"\0", ENDLESS_CAP), None)
        elif name == "drip":
            chunks = _drip(body, wait, mirror._closing, int(piece or 1))
            self._send_chunks(record, HTTPStatus.OK, chunks, len(body))
        elif name == "drip-headers":
            self._drip_headers(record, body, wait, mirror._closing)
        else:
            self._send(record, HTTPStatus.OK, body)

    def _send_file(self, record: Request, path: Path) -> None:
        """Send a file from disk as it is read, as a web server does: a large archive is not
        read whole into memory before its first byte goes out."""
        with path.open("rb") as file:
            size = os.fstat(file.fileno()).st_size
            self._send_chunks(
                record, HTTPStatus.OK, iter(partial(file.read, FILE_CHUNK), b""), size
            )

    def _send(
        self,
        record: Request,
        status: HTTPStatus,
        body: bytes,
        content_type: str = "application/octet-stream",
        *,
        length: int | None = -1,
        cut: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Send `body` up to `cut`; Content-Length `length`: len(body) if -1, none if None."""
        data = memoryview(body)[:cut]
        chunks = (data[i : i + WRITE_CHUNK] for i in range(0, len(data), WRITE_CHUNK))
        self._send_chunks(
            record, status, chunks, len(body) if length == -1 else length, content_type, headers
        )

    def _send_chunks(
        self,
        record: Request,
        status: HTTPStatus,
        chunks: Iterator[bytes | memoryview],
        length: int | None,
        content_type: str = "application/octet-stream",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            if length is not None:
                self.send_header("Content-Length", str(length))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            for chunk in chunks:
                self.wfile.write(chunk)
                record.sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _send_chunked(self, record: Request, body: bytes, cut: int | None) -> None:
        """Send `body` (up to `cut`) in chunks; the closing chunk only if it is all sent."""
        self.protocol_version = "HTTP/1.1"  # chunked transfer encoding is HTTP/1.1's
        data = memoryview(body)[:cut]
        try:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(data), WRITE_CHUNK):
                chunk = data[i : i + WRITE_CHUNK]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                record.sent += len(chunk)
            if cut is None:
                self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    def _drip_headers(
        self, record: Request, body: bytes, wait: float, closing: threading.Event
    ) -> None:
        head = (
            f"{self.protocol_version} 200 OK\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        try:
            for byte in _drip(head, wait, closing):
                self.wfile.write(byte)
            if not closing.is_set():
                self.wfile.write(body)
                record.sent += len(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True


def _drip(data: bytes, wait: float, closing: threading.Event, piece: int = 1) -> Iterator[bytes]:
    """`data` `piece` bytes at a time, `wait` seconds apart; stops when the mirror closes."""
    for i in range(0, len(data), piece):
        if i and closing.wait(wait):
            return
        yield data[i : i + piece]


def _repeat(body: bytes, total: int) -> Iterator[bytes]:
    block = body * max(1, WRITE_CHUNK // len(body))
    sent = 0
    while sent < total:
        yield block
        sent += len(block)
