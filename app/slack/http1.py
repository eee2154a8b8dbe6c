"""A lean HTTP/1.1 keep-alive client for one shape of request: POST a small pre-encoded body,
read a small answer.

Around one small JSON request to Slack, aiohttp's client machinery (request and response
objects, header multidicts, its stream writer and parser, per-request timers) was about a fifth
of a delivery's CPU (bench/RESULTS.md, issue 19). Here a request is one ``transport.write`` of
a head built once per URL, and the answer is parsed by an ``asyncio.Protocol``, which speaks
just as much HTTP/1.1 as servers send back: a status line, headers, a body framed by
``Content-Length``, by chunks or by the connection's close, and ``Connection: close``. Answers
and heads are capped, so a broken or hostile server cannot make us buffer without bound.

A request is sent again (on another connection) only when no byte of it was written: an idle
connection found closed before the write. Once written, a missing answer is the caller's to
judge (for a write to Slack: outcome unknown), never silently resent: a server that read the
request, acted on it and then dropped the connection looks exactly like one that closed an idle
connection as the request arrived.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import cast
from urllib.parse import urlsplit

MAX_BODY = 1024 * 1024  # Slack's answers to writes are a few KiB
MAX_HEAD = 64 * 1024
MAX_HEADERS = 100
MAX_CHUNK_LINE = 1024
# Idle connections older than this are closed rather than reused, well before the server's own
# keep-alive timeout would close them under a request.
KEEPALIVE_SECONDS = 15.0
MAX_CONNECTIONS = 64  # requests in flight at once; more wait for a free slot

_NO_BODY = frozenset({204, 304})


class HttpError(Exception):
    """The request failed below HTTP: no connection, or no well-formed answer."""


class ConnectFailed(HttpError):
    """No connection (refused, unresolvable, TLS handshake or certificate refused)."""


class Disconnected(HttpError):
    """The connection closed before the whole answer arrived."""


class BadResponse(HttpError):
    """The answer is not HTTP/1.x as we can read it, or is larger than we accept."""


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers  # names in lower case; repeated headers joined with ", "
        self.body = body


class Endpoint:
    """Where a POST goes, and its request head up to the body's length, encoded once."""

    __slots__ = ("head", "host", "port", "tls")

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        authority = parts.netloc.rpartition("@")[2]
        lines = [f"POST {target} HTTP/1.1", f"Host: {authority}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append("Content-Length: ")
        self.head = "\r\n".join(lines).encode("latin-1")

    def request(self, body: bytes) -> bytes:
        return b"%b%d\r\n\r\n%b" % (self.head, len(body), body)


class _Connection(asyncio.Protocol):
    """One connection, parsing the answer to the request in flight as its bytes arrive."""

    def __init__(self, origin: tuple[str, int, bool], lost: asyncio.Future[None]) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.idle_since = 0.0
        self.keep_alive = False
        self._lost = lost
        self._ended = False  # the peer closed its side, or the connection is gone
        self._answer: asyncio.Future[Response] | None = None
        self._buf = bytearray()
        self._status = 0  # 0 until the head of the answer is read
        self._headers: dict[str, str] = {}
        self._length: int | None = None  # Content-Length; None: chunked or until close
        self._chunked = False
        self._chunk_pos = 0  # where the next unread chunk starts in _buf
        self._body = bytearray()

    # --- asyncio's side -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports have a Transport's methods without deriving from it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        answer = self._answer
        if answer is None or answer.done():
            # Bytes no request asked for: this connection's framing can no longer be trusted.
            self.abort()
            return
        self._buf += data
        self._parse(answer, eof=False)

    def eof_received(self) -> bool:
        self._ended = True
        answer = self._answer
        if answer is not None and not answer.done():
            self._parse(answer, eof=True)
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended = True
        answer = self._answer
        if answer is not None and not answer.done():
            answer.set_exception(Disconnected(f"connection lost: {exc!r}" if exc else "closed"))
        if not self._lost.done():
            self._lost.set_result(None)

    # --- the client's side --------------------------------------------------------------------

    def usable(self) -> bool:
        """Open, and nothing came from the peer since the last answer (not even its close)."""
        transport = self.transport
        return not self._ended and transport is not None and not transport.is_closing()

    def send(self, request: bytes) -> asyncio.Future[Response]:
        assert self.transport is not None
        self._answer = answer = asyncio.get_running_loop().create_future()
        self._buf.clear()
        self._body.clear()
        self._status = 0
        self._chunk_pos = 0
        self.keep_alive = False
        self.transport.write(request)
        return answer

    def abort(self) -> None:
        self._ended = True
        if self.transport is not None:
            self.transport.abort()

    def wait_closed(self) -> asyncio.Future[None]:
        return self._lost

    # --- parsing ------------------------------------------------------------------------------

    def _parse(self, answer: asyncio.Future[Response], *, eof: bool) -> None:
        try:
            response = self._response(eof)
        except HttpError as exc:
            answer.set_exception(exc)
            self.abort()
            return
        if response is not None:
            answer.set_result(response)
        elif eof:
            answer.set_exception(
                Disconnected("closed before answering" if not self._status else "answer cut short")
            )
            self.abort()

    def _response(self, eof: bool) -> Response | None:
        buf = self._buf
        while not self._status:
            end = buf.find(b"\r\n\r\n")
            if end < 0 or end > MAX_HEAD:
                if len(buf) > MAX_HEAD:
                    raise BadResponse("answer head too long")
                return None
            self._head(bytes(buf[:end]))
            del buf[: end + 4]
            if self._status < 200:  # an interim answer (100 Continue): the real one follows
                self._status = 0
        if self._status in _NO_BODY:
            return self._done(b"", rest=len(buf))
        if self._length is not None:
            if len(buf) < self._length:
                return None
            return self._done(bytes(buf[: self._length]), rest=len(buf) - self._length)
        if self._chunked:
            return self._chunks()
        # Framed by the connection's close.
        if len(buf) > MAX_BODY:
            raise BadResponse(f"answer larger than {MAX_BODY} bytes")
        if not eof:
            return None
        self.keep_alive = False
        return Response(self._status, self._headers, bytes(buf))

    def _head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        if len(lines) > MAX_HEADERS + 1:
            raise BadResponse("too many headers in the answer")
        version, _, rest = lines[0].partition(b" ")
        code = rest[:3]
        if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise BadResponse(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
        status = int(code)
        if status < 100:
            raise BadResponse(f"bad status {status}")
        headers: dict[str, str] = {}
        name = ""
        for line in lines[1:]:
            if line[:1] in (b" ", b"\t") and name:  # obsolete line folding: one value
                headers[name] += " " + line.strip().decode("latin-1")
                continue
            raw, colon, value = line.partition(b":")
            if not colon or not raw or raw != raw.strip():
                raise BadResponse(f"bad header line: {line[:80]!r}")
            name = raw.decode("latin-1").lower()
            text = value.strip().decode("latin-1")
            headers[name] = f"{headers[name]}, {text}" if name in headers else text
        self._status = status
        self._headers = headers
        self._length = None
        self._chunked = False
        connection = headers.get("connection", "").lower()
        if version == b"HTTP/1.1":
            self.keep_alive = "close" not in connection
        else:
            self.keep_alive = "keep-alive" in connection
        coding = headers.get("transfer-encoding")
        if coding is not None:
            # Chunked must come last; any other framing ends with the connection.
            self._chunked = coding.rpartition(",")[2].strip().lower() == "chunked"
            self.keep_alive = self.keep_alive and self._chunked
        elif "content-length" in headers:
            values = {v.strip() for v in headers["content-length"].split(",")}
            length = values.pop() if len(values) == 1 else ""
            if not length.isdigit():
                raise BadResponse(f"bad Content-Length: {headers['content-length']!r}")
            self._length = int(length)
            if self._length > MAX_BODY:
                raise BadResponse(f"answer larger than {MAX_BODY} bytes")
        elif status not in _NO_BODY:
            self.keep_alive = False

    def _chunks(self) -> Response | None:
        buf, body, pos = self._buf, self._body, self._chunk_pos
        while True:
            eol = buf.find(b"\r\n", pos, pos + MAX_CHUNK_LINE)
            if eol < 0:
                if len(buf) - pos >= MAX_CHUNK_LINE:
                    raise BadResponse("chunk size line too long")
                break
            size_text = bytes(buf[pos:eol]).partition(b";")[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise BadResponse(f"bad chunk size {size_text[:20]!r}") from None
            if size < 0 or len(body) + size > MAX_BODY:
                raise BadResponse(f"answer larger than {MAX_BODY} bytes")
            if size == 0:  # the last chunk; trailers (ignored) end at an empty line
                start = eol + 2
                if buf[start : start + 2] == b"\r\n":
                    return self._done(bytes(body), rest=len(buf) - start - 2)
                end = buf.find(b"\r\n\r\n", start)
                if end < 0:
                    if len(buf) - start > MAX_HEAD:
                        raise BadResponse("chunk trailers too long")
                    break
                return self._done(bytes(body), rest=len(buf) - end - 4)
            end = eol + 2 + size
            if len(buf) < end + 2:
                break
            if buf[end : end + 2] != b"\r\n":
                raise BadResponse("chunk not followed by CRLF")
            body += buf[eol + 2 : end]
            pos = end + 2
        self._chunk_pos = pos
        return None

    def _done(self, body: bytes, *, rest: int) -> Response:
        if rest:
            self.keep_alive = False  # more than the answer came: not ours to guess what it is
        return Response(self._status, self._headers, body)


class Http1Client:
    """Keep-alive connections per origin, for one event loop; :meth:`close` ends them all."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, int, bool], list[_Connection]] = {}
        self._open: set[_Connection] = set()
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS)
        self._ssl: ssl.SSLContext | None = None
        self.closed = False

    async def post(self, endpoint: Endpoint, body: bytes, within: float) -> Response:
        """POST ``body`` and return the answer, whatever its status.

        ``within`` bounds the whole exchange with one timer of our own: ``asyncio.timeout``'s
        per-call bookkeeping is a cost this hot path does without.

        Raises:
            TimeoutError: no whole answer within ``within`` seconds (connecting included).
            HttpError: no connection, or the connection ended without a whole answer.
        """
        if self.closed:
            raise ConnectFailed("client closed")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        if self._slots.locked():
            async with asyncio.timeout_at(deadline):
                await self._slots.acquire()
        else:
            await self._slots.acquire()
        try:
            return await self._exchange(loop, endpoint, endpoint.request(body), deadline)
        finally:
            self._slots.release()

    async def _exchange(
        self,
        loop: asyncio.AbstractEventLoop,
        endpoint: Endpoint,
        request: bytes,
        deadline: float,
    ) -> Response:
        conn = self._reuse((endpoint.host, endpoint.port, endpoint.tls), loop.time())
        answer = None
        if conn is not None:
            try:
                answer = conn.send(request)
            except (RuntimeError, OSError):  # refused before a byte left: a fresh one below
                conn.abort()
        if conn is None or answer is None:
            conn = await self._connect(loop, endpoint, deadline)
            answer = conn.send(request)
        timer = loop.call_at(deadline, _time_out, conn, answer)
        try:
            response = await answer
        except BaseException:
            conn.abort()  # a cancelled or failed exchange leaves the connection mid-answer
            raise
        finally:
            timer.cancel()
        if conn.keep_alive and conn.usable():
            conn.idle_since = loop.time()
            self._idle.setdefault(conn.origin, []).append(conn)
        else:
            conn.abort()
        return response

    def _reuse(self, origin: tuple[str, int, bool], now: float) -> _Connection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        # Oldest first: drop those idle too long, then take the most recently used.
        stale = 0
        while stale < len(idle) and now - idle[stale].idle_since > KEEPALIVE_SECONDS:
            idle[stale].abort()
            stale += 1
        del idle[:stale]
        while idle:
            conn = idle.pop()
            if conn.usable():
                return conn
            conn.abort()
        return None

    async def _connect(
        self, loop: asyncio.AbstractEventLoop, endpoint: Endpoint, deadline: float
    ) -> _Connection:
        lost: asyncio.Future[None] = loop.create_future()
        origin = (endpoint.host, endpoint.port, endpoint.tls)
        context = None
        if endpoint.tls:
            if self._ssl is None:
                self._ssl = ssl.create_default_context()  # certificates and host name checked
            context = self._ssl
        try:
            async with asyncio.timeout_at(deadline):
                _, conn = await loop.create_connection(
                    lambda: _Connection(origin, lost),
                    endpoint.host,
                    endpoint.port,
                    ssl=context,
                    server_hostname=endpoint.host if context is not None else None,
                )
        except OSError as exc:  # refused, unresolvable, TLS refused (ssl.SSLError is one)
            raise ConnectFailed(f"{type(exc).__name__}: {exc}") from exc
        if self.closed:  # closed while we connected: this one must not outlive the client
            conn.abort()
            raise ConnectFailed("client closed")
        self._open.add(conn)
        lost.add_done_callback(lambda _: self._open.discard(conn))
        return conn

    def connections(self) -> int:
        """Connections open now, idle or busy."""
        return len(self._open)

    async def close(self) -> None:
        """Close every connection and wait until their sockets are released."""
        self.closed = True
        self._idle.clear()
        conns = list(self._open)
        for conn in conns:
            conn.abort()
        if conns:
            # connection_lost comes a loop turn after abort(): only then is the socket closed.
            await asyncio.wait([c.wait_closed() for c in conns], timeout=5.0)


def _time_out(conn: _Connection, answer: asyncio.Future[Response]) -> None:
    if not answer.done():
        answer.set_exception(TimeoutError())
    conn.abort()
