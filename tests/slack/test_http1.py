"""The lean HTTP/1.1 client against a scripted server on 127.0.0.1: framing, keep-alive, caps,
timeouts, and a request never resent once a byte of it may have been read."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.slack import http1
from app.slack.http1 import BadResponse, Disconnected, Endpoint, Http1Client
from tests.wait import wait_for_async

HANG = "hang"  # a step: say nothing more until the server stops
CLOSE = "close"  # a step: close the connection

OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'


@dataclass
class Script:
    """A server that reads each request whole and answers with the next scripted steps."""

    replies: list[list[bytes | str]] = field(default_factory=list)
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0
    closed: int = 0  # connections that ended (either side)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                self.requests.append(head + await reader.readexactly(length))
                for step in self.replies.pop(0) if self.replies else [OK]:
                    if step == HANG:
                        await self.stopping.wait()
                        return
                    if step == CLOSE:
                        return
                    assert isinstance(step, bytes)
                    writer.write(step)
                    await writer.drain()
        finally:
            writer.close()
            self.closed += 1


@pytest.fixture
async def server() -> AsyncIterator[tuple[Script, Endpoint]]:
    script = Script()
    srv = await asyncio.start_server(script.handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    endpoint = Endpoint(f"http://127.0.0.1:{port}/api/chat.postMessage", {"X-Test": "1"})
    yield script, endpoint
    script.stopping.set()
    srv.close()
    await srv.wait_closed()


@pytest.fixture
async def client() -> AsyncIterator[Http1Client]:
    c = Http1Client()
    yield c
    await c.close()
    assert c.connections() == 0


async def test_a_request_is_one_well_formed_post(server, client) -> None:
    script, endpoint = server
    res = await client.post(endpoint, b'{"a":1}', 5.0)
    assert (res.status, res.body, res.headers["content-type"]) == (
        200,
        b'{"ok":true}',
        "application/json",
    )
    head, _, body = script.requests[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /api/chat.postMessage HTTP/1.1"
    assert f"Host: 127.0.0.1:{endpoint.port}".encode() in lines
    assert b"X-Test: 1" in lines and b"Content-Length: 7" in lines
    assert not any(line.lower().startswith(b"accept-encoding") for line in lines)
    assert body == b'{"a":1}'


async def test_keep_alive_reuses_one_connection(server, client) -> None:
    script, endpoint = server
    for _ in range(3):
        assert (await client.post(endpoint, b"{}", 5.0)).status == 200
    assert script.connections == 1 and client.connections() == 1


async def test_chunked_answers_with_extensions_and_trailers_then_reuse(server, client) -> None:
    script, endpoint = server
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    script.replies = [
        [head, b"5;name=x\r\nhello\r\n", b"6\r\n world\r\n", b"0\r\nX-Sum: 1\r\n\r\n"],
        [head + b"3\r\nabc\r\n0\r\n\r\n"],
    ]
    assert (await client.post(endpoint, b"{}", 5.0)).body == b"hello world"
    assert (await client.post(endpoint, b"{}", 5.0)).body == b"abc"
    assert script.connections == 1


@pytest.mark.parametrize("pieces", [1, 7, 10_000], ids=["whole", "in-7-byte-pieces", "bytewise"])
async def test_answers_parse_however_their_bytes_are_split(pieces) -> None:
    answers = [
        (OK, b'{"ok":true}'),
        (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
            b"\r\n1;a=b\r\nx\r\nA\r\n0123456789\r\n0\r\nT: 1\r\n\r\n",
            b"x0123456789",
        ),
        (b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n folded\r\n\r\n", b""),
    ]
    for raw, body in answers:
        conn = _FedConnection()
        answer = conn.start()
        size = max(1, len(raw) // pieces) if pieces > 1 else len(raw)
        for i in range(0, len(raw), size):
            assert not answer.done()
            conn.data_received(raw[i : i + size])
        assert answer.result().body == body and conn.keep_alive


async def test_repeated_headers_are_joined_and_folded_lines_kept() -> None:
    conn = _FedConnection()
    answer = conn.start()
    conn.data_received(
        b"HTTP/1.1 429 Too Many\r\nRetry-After: 2\r\nX-A: 1\r\nx-a: 2\r\nX-B: b\r\n c\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    res = answer.result()
    assert res.status == 429 and res.headers["retry-after"] == "2"
    assert res.headers["x-a"] == "1, 2" and res.headers["x-b"] == "b c"


async def test_connection_close_and_close_framed_answers_are_not_reused(server, client) -> None:
    script, endpoint = server
    script.replies = [
        [b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi"],
        [b"HTTP/1.0 200 OK\r\n\r\nuntil close", CLOSE],
        [b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab"],  # a byte more than it said
    ]
    assert (await client.post(endpoint, b"{}", 5.0)).body == b"hi"
    assert (await client.post(endpoint, b"{}", 5.0)).body == b"until close"
    assert (await client.post(endpoint, b"{}", 5.0)).body == b"a"
    assert (await client.post(endpoint, b"{}", 5.0)).status == 200
    assert script.connections == 4


async def test_an_idle_connection_the_server_closed_is_replaced(server, client) -> None:
    script, endpoint = server
    script.replies = [[OK, CLOSE]]
    await client.post(endpoint, b"{}", 5.0)
    await wait_for_async(lambda: client.connections() == 0)  # its close seen while idle
    assert (await client.post(endpoint, b"{}", 5.0)).status == 200
    assert script.connections == 2 and len(script.requests) == 2


async def test_an_idle_connection_is_not_reused_after_the_keepalive(
    server, client, monkeypatch
) -> None:
    script, endpoint = server
    await client.post(endpoint, b"{}", 5.0)
    monkeypatch.setattr(http1, "KEEPALIVE_SECONDS", -1.0)
    await client.post(endpoint, b"{}", 5.0)
    assert script.connections == 2
    await wait_for_async(lambda: script.closed == 1)  # the stale one was closed, not leaked


async def test_a_request_read_and_left_unanswered_is_never_resent(server, client) -> None:
    # On a reused connection, a close right after the request reads the same as an idle
    # connection closed as the request arrived: the server may have acted on it.
    script, endpoint = server
    script.replies = [[OK], [CLOSE]]
    await client.post(endpoint, b"{}", 5.0)
    with pytest.raises(Disconnected):
        await client.post(endpoint, b"{}", 5.0)
    assert len(script.requests) == 2 and script.connections == 1


async def test_an_answer_cut_short_fails(server, client) -> None:
    script, endpoint = server
    script.replies = [[b'HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{"ok"', CLOSE]]
    with pytest.raises(Disconnected):
        await client.post(endpoint, b"{}", 5.0)


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (http1.MAX_BODY + 1),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % (http1.MAX_BODY + 1),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n%b\r\n" % (http1.MAX_BODY // 2, b"x" * (http1.MAX_BODY // 2)) * 3,
        b"HTTP/1.0 200 OK\r\n\r\n" + b"x" * (http1.MAX_BODY + 1),
        b"HTTP/1.1 200 OK\r\n" + b"X-Pad: 1\r\n" * (http1.MAX_HEADERS + 1) + b"\r\n",
        b"HTTP/1.1 200 OK\r\nX-Pad: " + b"x" * http1.MAX_HEAD,
        b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"SSH-2.0-OpenSSH\r\n\r\n",
    ],
    ids=[
        "length-over-cap",
        "chunk-over-cap",
        "chunks-over-cap",
        "close-framed-over-cap",
        "too-many-headers",
        "head-too-long",
        "conflicting-lengths",
        "bad-chunk-size",
        "not-http",
    ],
)
async def test_oversized_or_malformed_answers_fail(server, client, answer) -> None:
    script, endpoint = server
    script.replies = [[answer, HANG]]
    with pytest.raises(BadResponse):
        await client.post(endpoint, b"{}", 5.0)
    await wait_for_async(lambda: client.connections() == 0)


async def test_a_timeout_mid_body_fails_and_drops_the_connection(server, client) -> None:
    script, endpoint = server
    script.replies = [[b'HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{"ok"', HANG]]
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(TimeoutError):
        await client.post(endpoint, b"{}", 0.3)
    assert loop.time() - start >= 0.29  # uvloop's timers round to milliseconds
    await wait_for_async(lambda: client.connections() == 0)
    assert (await client.post(endpoint, b"{}", 5.0)).status == 200  # a fresh connection
    assert script.connections == 2


async def test_a_connection_refused_fails_to_connect(server) -> None:
    _, endpoint = server
    c = Http1Client()
    refused = Endpoint(f"http://127.0.0.1:{_closed_port()}/api/x", {})
    with pytest.raises(http1.ConnectFailed):
        await c.post(refused, b"{}", 5.0)
    await c.close()
    with pytest.raises(http1.ConnectFailed):  # closed: no new connections
        await c.post(endpoint, b"{}", 5.0)


async def test_close_releases_every_socket(server) -> None:
    script, endpoint = server
    c = Http1Client()
    await asyncio.gather(*(c.post(endpoint, b"{}", 5.0) for _ in range(3)))
    assert c.connections() == script.connections == 3
    await c.close()
    assert c.connections() == 0
    await wait_for_async(lambda: script.closed == 3)


async def test_https_checks_the_certificate(tmp_path) -> None:
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    srv = await asyncio.start_server(Script().handle, "127.0.0.1", 0, ssl=context)
    port = srv.sockets[0].getsockname()[1]
    c = Http1Client()
    try:
        with pytest.raises(http1.ConnectFailed, match="CERTIFICATE_VERIFY_FAILED"):
            await c.post(Endpoint(f"https://localhost:{port}/api/x", {}), b"{}", 5.0)
    finally:
        await c.close()
        srv.close()
        await srv.wait_closed()


class _FedConnection(http1._Connection):
    """A connection fed by hand, to split an answer's bytes exactly where a test wants."""

    def __init__(self) -> None:
        super().__init__(("test", 0, False), asyncio.get_running_loop().create_future())
        self.connection_made(_NullTransport())

    def start(self) -> asyncio.Future[http1.Response]:
        return self.send(b"")


class _NullTransport(asyncio.Transport):
    def write(self, data: bytes | bytearray | memoryview) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def abort(self) -> None:
        pass


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _self_signed(tmp_path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)
