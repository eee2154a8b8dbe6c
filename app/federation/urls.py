"""Outbound peer URLs: https only, and never an address inside our own network.

A pairing code names the URL we will call; without this check a malicious peer could make us
send signed requests to the metadata service or an internal database (SSRF).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from app.errors import FederationError


def check_peer_url(url: str, *, allow_private: bool = False) -> str:
    """Return the normalized base URL, or raise :class:`FederationError` saying why not.

    Args:
        url: the peer's public base URL.
        allow_private: accept http and loopback/private addresses (local and test use only;
            ``SYNCBOT_FEDERATION_ALLOW_PRIVATE``).
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise FederationError(f"not a URL: {url!r}")
    if parts.scheme != "https" and not allow_private:
        raise FederationError("peer URLs must use https")
    if parts.username or parts.password:
        raise FederationError("peer URLs must not carry credentials")
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        raise FederationError(f"cannot resolve {parts.hostname}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        internal = (
            address.is_private
            or address.is_loopback
            or address.is_link_local
            or address.is_reserved
            or address.is_multicast
            or address.is_unspecified
        )
        if internal and not allow_private:
            raise FederationError(f"{parts.hostname} resolves to a non-public address {address}")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
