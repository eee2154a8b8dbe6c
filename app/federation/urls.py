"""Outbound peer URLs: https only, and never an address inside our own network.

A pairing code names the URL we will call; without these checks a malicious peer could make us
send signed requests to the metadata service or an internal database (SSRF).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from app.egress import is_public
from app.errors import FederationError


def check_peer_url(url: str, *, allow_private: bool = False) -> str:
    """Return the normalized base URL, or raise :class:`FederationError` saying why not.

    Never resolves a name (this runs on request paths, before anything else is trusted);
    every connection to a peer goes through the egress policy, which checks the address it
    actually connects to.

    Args:
        url: the peer's public base URL.
        allow_private: accept http and loopback/private addresses (local and test use only;
            ``SYNCBOT_FEDERATION_ALLOW_PRIVATE``).
    """
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError for a port out of range (99999)
    except ValueError as exc:
        raise FederationError(f"not a URL: {url[:100]!r} ({exc})") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise FederationError(f"not a URL: {url[:100]!r}")
    if parts.scheme != "https" and not allow_private:
        raise FederationError("peer URLs must use https")
    if parts.username or parts.password:
        raise FederationError("peer URLs must not carry credentials")
    try:
        address = ipaddress.ip_address(parts.hostname)
    except ValueError:
        address = None  # a name: checked at connect time by the egress policy (app.egress)
    if address is not None and not allow_private and not is_public(address):
        raise FederationError(f"{parts.hostname} is not a public address")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
