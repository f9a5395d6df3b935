"""Where webhooks may go: not into the service's own network (SSRF, OWASP API7:2023).

A URL naming a private, loopback, link-local or otherwise non-public address — directly or through
its DNS name — is refused unless ``ATTUNE_WEBHOOK_ALLOW_PRIVATE=true`` (development and tests).
The check runs when an endpoint is created and again before every delivery, since a DNS name may
point elsewhere by then.
"""

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_public(address: Address) -> bool:
    """True for a globally routable unicast address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


async def refusal(url: str, *, allow_private: bool) -> str | None:
    """Why ``url`` may not receive webhooks, or None when it may."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "only http and https URLs with a host can receive webhooks"
    if allow_private:
        return None
    host = parts.hostname
    try:
        literal: Address | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host,
                parts.port or (443 if parts.scheme == "https" else 80),
                type=socket.SOCK_STREAM,
            )
        except (OSError, UnicodeError):
            return f"the host {host!r} does not resolve"
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses or not all(is_public(a) for a in addresses):
        return "the URL points to a private, loopback or link-local address"
    return None
