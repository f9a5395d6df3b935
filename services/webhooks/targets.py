"""Where webhooks may go: not into the service's own network (SSRF, OWASP API7:2023).

A URL naming a non-public address — directly or through its DNS name — is refused unless
``ATTUNE_WEBHOOK_ALLOW_PRIVATE=true`` (development and tests). The check runs when an endpoint is
created (so that a mistake is a 422 at once) and again at every connection, inside the
connection itself (`PinnedResolver`; `literal_refusal` for a host written as an address): the
name is resolved once, every address it resolves to is vetted, and the socket is opened to a
vetted address, while TLS (SNI, certificate) and the ``Host`` header keep the name. There is no
second DNS lookup between check and connect for a rebinding DNS server to answer differently.

IPv6 forms that carry an IPv4 address are judged by that address (a NAT64 gateway or a 6to4
relay would forward to it): IPv4-mapped ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96`` (RFC 6052)
and 6to4 ``2002::/16`` (RFC 3056). Deprecated and local-use forms are refused whatever they
carry: IPv4-compatible ``::a.b.c.d`` (RFC 4291 §2.5.5.1), IPv4-translated ``::ffff:0:a.b.c.d``,
NAT64 local-use ``64:ff9b:1::/48`` (RFC 8215), Teredo ``2001::/32`` (RFC 4380: the client
address is whatever a NAT shows), site-local ``fec0::/10`` (RFC 3879). Other IPv6 addresses must
be global unicast (``2000::/3``, RFC 4291) and not special-purpose (IANA registry; Python's
``is_global``, plus the documentation prefix ``3fff::/20`` of RFC 9637 that Python 3.11 lacks).

Ports: outside development only the ports in ``ATTUNE_WEBHOOK_ALLOWED_PORTS`` (by default 80,
443, 8080, 8443), so that the delivery log cannot be used to probe a host's other services.
"""

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.helpers import is_ip_address

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# Resolves a host name and port to the addresses to connect to (getaddrinfo in production; a
# test may pass its own, to make a name point somewhere without a DNS server).
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

DEFAULT_ALLOWED_PORTS = (80, 443, 8080, 8443)
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
_DOCUMENTATION_V6 = ipaddress.IPv6Network("3fff::/20")
PRIVATE_REASON = "the URL points to a private, loopback, link-local or otherwise non-public address"


class TargetRefused(Exception):
    """A delivery's host resolves to an address it may not be sent to."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a gateway would forward ``address`` to: IPv4-mapped, NAT64 (well-known
    prefix) or 6to4; None for any other address."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return address.sixtofour


def is_public(address: Address) -> bool:
    """True for a globally routable unicast address (see the module's docstring)."""
    if isinstance(address, ipaddress.IPv4Address):
        return address.is_global and not address.is_multicast and not address.is_reserved
    inner = embedded_ipv4(address)
    if inner is not None:
        return is_public(inner)
    return (
        address in _GLOBAL_UNICAST
        and address.is_global
        and address.teredo is None
        and address not in _DOCUMENTATION_V6
    )


async def system_resolver(host: str, port: int) -> Sequence[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def url_refusal(url: str, *, allow_private: bool, allowed_ports: Iterable[int]) -> str | None:
    """What is wrong with ``url`` itself (scheme, host, port), without resolving it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "only http and https URLs with a host can receive webhooks"
    try:
        port = parts.port or default_port(parts.scheme)
    except ValueError:
        return "the URL's port is not a number between 0 and 65535"
    if not allow_private and port not in set(allowed_ports):
        ports = ", ".join(str(p) for p in sorted(set(allowed_ports)))
        return f"webhooks go to ports {ports} only (ATTUNE_WEBHOOK_ALLOWED_PORTS)"
    return None


def redacted(url: str) -> str:
    """``url`` without the credentials it may carry (``user:password@`` becomes ``***@``): a
    receiver's Basic credentials are used to deliver, never shown again."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()


async def vetted_addresses(
    host: str, port: int, *, allow_private: bool, resolve: Resolver = system_resolver
) -> list[Address]:
    """The addresses to connect to for ``host``, resolved once and vetted by
    `private_refusal`. Raises `TargetRefused`."""
    try:
        addresses: list[Address] = [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        try:
            found = await resolve(host, port)
        except (OSError, UnicodeError):
            raise TargetRefused(f"the host {host!r} does not resolve") from None
        # Dropping an IPv6 zone ("fe80::1%eth0") leaves a link-local address, refused below.
        addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in dict.fromkeys(found)]
    if not addresses:
        raise TargetRefused(f"the host {host!r} does not resolve")
    reason = private_refusal(addresses, allow_private=allow_private)
    if reason is not None:
        raise TargetRefused(reason)
    return addresses


def private_refusal(addresses: Iterable[Address], *, allow_private: bool) -> str | None:
    """The rule for a host's addresses, resolved or written: all of them public (one private
    answer among public ones is how a rebinding attack hides), unless private ones are allowed."""
    if allow_private or all(is_public(a) for a in addresses):
        return None
    return PRIVATE_REASON


async def refusal(
    url: str,
    *,
    allow_private: bool,
    allowed_ports: Iterable[int] = DEFAULT_ALLOWED_PORTS,
    resolve: Resolver = system_resolver,
) -> str | None:
    """Why ``url`` may not receive webhooks, or None when it may."""
    reason = url_refusal(url, allow_private=allow_private, allowed_ports=allowed_ports)
    if reason is not None or allow_private:
        return reason
    parts = urlsplit(url)
    assert parts.hostname is not None  # url_refusal checked it
    try:
        await vetted_addresses(
            parts.hostname,
            parts.port or default_port(parts.scheme),
            allow_private=False,
            resolve=resolve,
        )
    except TargetRefused as refused:
        return refused.reason
    return None


def literal_refusal(host: str, *, allow_private: bool) -> str | None:
    """Why a host written as an address may not be connected to, or None. aiohttp connects to
    an address written in the URL without asking the resolver (`PinnedResolver`), so such a
    host is vetted here, by the same rule. What aiohttp takes for an address (digits and dots,
    or any colon: ``aiohttp.helpers.is_ip_address``) but Python cannot read as one is refused."""
    if not is_ip_address(host):
        return None  # a name: vetted by PinnedResolver when a connection is opened
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return f"the host {host!r} is not a valid address"
    return private_refusal([address], allow_private=allow_private)


class PinnedResolver(AbstractResolver):
    """aiohttp's resolver, but every name resolves once, through `vetted_addresses`: aiohttp
    opens its socket to one of the addresses returned, in the resolver's order, while TLS (SNI,
    certificate) and the ``Host`` header keep the URL's name. `TargetRefused` passes through
    aiohttp unchanged (it wraps only `OSError`s as DNS errors)."""

    def __init__(self, *, allow_private: bool, resolve: Resolver = system_resolver) -> None:
        self._allow_private = allow_private
        self._resolve = resolve

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await vetted_addresses(
            host, port, allow_private=self._allow_private, resolve=self._resolve
        )
        return [
            {
                "hostname": host,
                "host": str(address),
                "port": port,
                "family": socket.AF_INET6 if address.version == 6 else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in addresses
        ]

    async def close(self) -> None:
        return None
