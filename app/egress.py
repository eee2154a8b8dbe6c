"""One egress policy for every outbound fetch whose URL someone else chose.

Peer URLs come from pairing codes, avatar URLs from peer posts and Slack ``bot_message`` icons,
file URLs from events. Without a policy each of them is a way to make this service read the
cloud metadata endpoint, an internal admin port or the loopback interface (SSRF) and hand the
bytes on. The policy refuses private, loopback, link-local, CGNAT, multicast and reserved
addresses unless an operator lists them (``SYNCBOT_EGRESS_ALLOW``), and it checks the address
actually connected to — the resolver of the HTTP session is guarded, so a name that resolved
to a public address at check time and to 127.0.0.1 at connect time (DNS rebinding) is refused
too. Redirects are not followed; every response is capped in size and time.

Configured endpoints (the homeserver, the Slack API, the database) are not subject to it: the
operator chose them.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from app.errors import RemoteError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_TIMEOUT = 15.0
_CHUNK = 64 * 1024


class EgressRefused(RemoteError):
    """The policy refused a URL or the address it resolved to (never retried)."""

    def __init__(self, message: str, *, network: str = "http") -> None:
        super().__init__(message, network=network, retryable=False)


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDRs (or single addresses) to networks.

    Raises:
        ValueError: naming the first entry that is not an address or network.
    """
    out = []
    for raw in values:
        text = raw.strip()
        if not text:
            continue
        try:
            out.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or CIDR network: {text!r}") from None
    return tuple(out)


def is_public(address: IPAddress) -> bool:
    """Whether ``address`` is on the public internet (not private, loopback, CGNAT, ...)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is loopback, whatever it looks like
    # is_global is False for RFC 1918, loopback, link-local, CGNAT (100.64/10), documentation,
    # benchmarking and reserved ranges; multicast is refused on top.
    return address.is_global and not address.is_multicast


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """Which addresses outbound fetches may reach, and how much they may read.

    Args:
        allow: networks reachable even though they are not public (``SYNCBOT_EGRESS_ALLOW``);
            empty by default, in production and in local development alike.
        max_bytes: default cap on a response body.
        timeout: default total time of one fetch, connect included.
    """

    allow: tuple[IPNetwork, ...] = ()
    max_bytes: int = DEFAULT_MAX_BYTES
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def from_settings(cls, settings: Any) -> EgressPolicy:
        return cls(allow=parse_networks(getattr(settings, "egress_allow", ()) or ()))

    def widened(self, networks: Sequence[str]) -> EgressPolicy:
        """This policy with ``networks`` allowed as well."""
        return EgressPolicy(
            allow=(*self.allow, *parse_networks(networks)),
            max_bytes=self.max_bytes,
            timeout=self.timeout,
        )

    def permits(self, address: IPAddress) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if is_public(address):
            return True
        return any(address.version == net.version and address in net for net in self.allow)

    def check_url(self, url: str, *, network: str = "http") -> str:
        """Refuse a URL that is not http(s), carries credentials, or names a refused literal
        address; names are checked when connecting. Returns the URL.
        """
        try:
            parts = urlsplit(url)
            host = parts.hostname
            parts.port  # noqa: B018 - raises ValueError for an out-of-range port
        except ValueError:
            raise EgressRefused(f"not a URL: {url[:80]!r}", network=network) from None
        if parts.scheme not in ("http", "https") or not host:
            raise EgressRefused(f"not an http(s) URL: {url[:80]!r}", network=network)
        if parts.username or parts.password:
            raise EgressRefused("URLs must not carry credentials", network=network)
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            return url
        if not self.permits(literal):
            raise EgressRefused(f"{host} is not a public address", network=network)
        return url

    def connector(self) -> aiohttp.TCPConnector:
        """A connector whose every resolution goes through this policy (at connect time)."""
        return aiohttp.TCPConnector(resolver=GuardedResolver(self), use_dns_cache=False)

    @asynccontextmanager
    async def session(
        self, *, time_limit: float | None = None
    ) -> AsyncIterator[aiohttp.ClientSession]:
        """A client session bound to this policy (redirects must be refused per request)."""
        client_timeout = aiohttp.ClientTimeout(total=time_limit or self.timeout)
        async with aiohttp.ClientSession(
            connector=self.connector(), timeout=client_timeout
        ) as http:
            yield http

    async def stream(
        self,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        max_bytes: int | None = None,
        time_limit: float | None = None,
        network: str = "http",
    ) -> AsyncIterator[bytes]:
        """GET ``url`` under the policy, yielding its body in chunks up to ``max_bytes``.

        Raises:
            EgressRefused: the URL or its address is refused, or the body is over the cap.
            RemoteError: the fetch failed (retryable for 5xx, 429 and transport errors).
        """
        cap = self.max_bytes if max_bytes is None else max_bytes
        self.check_url(url, network=network)
        try:
            async with (
                self.session(time_limit=time_limit) as http,
                http.get(url, headers=headers or {}, allow_redirects=False) as resp,
            ):
                if resp.status != 200:
                    raise RemoteError(
                        f"fetch answered HTTP {resp.status}",
                        network=network,
                        status=resp.status,
                        retryable=resp.status >= 500 or resp.status == 429,
                    )
                declared = resp.content_length
                if declared is not None and declared > cap:
                    raise EgressRefused(f"response larger than {cap} bytes", network=network)
                size = 0
                async for chunk in resp.content.iter_chunked(_CHUNK):
                    size += len(chunk)
                    if size > cap:
                        raise EgressRefused(f"response larger than {cap} bytes", network=network)
                    yield chunk
        except EgressRefused:
            raise
        except (TimeoutError, aiohttp.ClientError) as exc:
            refused = refusal(exc)
            if refused is not None:
                raise EgressRefused(str(refused), network=network) from None
            raise RemoteError(
                f"fetch failed: {type(exc).__name__}", network=network, retryable=True
            ) from exc

    async def fetch(
        self,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        max_bytes: int | None = None,
        time_limit: float | None = None,
        network: str = "http",
    ) -> bytes:
        """The whole body of ``url`` (see :meth:`stream`)."""
        chunks = [
            chunk
            async for chunk in self.stream(
                url, headers=headers, max_bytes=max_bytes, time_limit=time_limit, network=network
            )
        ]
        return b"".join(chunks)


class GuardedResolver(AbstractResolver):
    """Resolves names like the default resolver, then drops every address the policy refuses.

    aiohttp connects only to the addresses its resolver returned, so the check and the
    connection see the same address: a rebinding name cannot slip an internal one in.
    """

    def __init__(self, policy: EgressPolicy) -> None:
        self._policy = policy
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = [r for r in results if self._policy.permits(ipaddress.ip_address(r["host"]))]
        if not allowed:
            # An OSError subclass: aiohttp wraps it in ClientConnectorError with this cause.
            raise _Refused(host)
        return allowed

    async def close(self) -> None:
        await self._inner.close()


class _Refused(OSError):
    def __init__(self, host: str) -> None:
        super().__init__(f"{host} resolves to no public address")


def refusal(exc: BaseException) -> OSError | None:
    """The policy's refusal behind an aiohttp connection error, if that is what it was."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return None
        if isinstance(seen, _Refused):
            return seen
        inner = getattr(seen, "os_error", None)
        if isinstance(inner, _Refused):
            return inner
        seen = seen.__cause__ or seen.__context__
    return None
