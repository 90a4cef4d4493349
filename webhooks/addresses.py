"""Where a webhook may be sent: the URL's rules and the address it resolves to.

A URL must be https (http too when allowed), carry no credentials, and every address its host
resolves to must be public; hosts in the allow-list (development) skip the address rule. The
sender then connects to the address checked here, so a second DNS answer cannot redirect it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
# inet_aton's legacy spellings of an IPv4 address: 2130706433, 0x7f.1, 0177.0.0.1, 127.1
_LEGACY_IPV4 = re.compile(r"(?=.*\d)[0-9a-fA-FxX.]+")
_CATEGORIES: tuple[tuple[str, Callable[[IPAddress], bool]], ...] = (
    ("loopback", lambda a: a.is_loopback),
    ("unspecified", lambda a: a.is_unspecified),
    ("link-local", lambda a: a.is_link_local),
    ("multicast", lambda a: a.is_multicast),
    ("shared (CGNAT)", lambda a: isinstance(a, ipaddress.IPv4Address) and a in CGNAT),
    ("private", lambda a: a.is_private),
    ("reserved", lambda a: a.is_reserved),
    ("non-global", lambda a: not a.is_global),
)


class Refused(Exception):
    """The URL may not be sent to; retrying cannot change that."""


class Unresolved(Exception):
    """The host did not resolve (now); a later attempt may succeed."""


def refusal(address: IPAddress) -> str | None:
    """Why `address` is not a public address a webhook may reach, or None when it is."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_refusal(address)
        if embedded is not None:
            return embedded
    for label, matches in _CATEGORIES:
        if matches(address):
            return f"{address} is a {label} address"
    return None


def _embedded_refusal(address: ipaddress.IPv6Address) -> str | None:
    """IPv4-mapped and -compatible forms are refused outright (NAT64's 64:ff9b::/96 too: it
    lies in the reserved ::/8); a 6to4 address is judged by the IPv4 address it carries."""
    if address.ipv4_mapped is not None:
        return f"{address} is an IPv4-mapped address"
    if int(address) >> 32 == 0 and int(address) > 1:
        return f"{address} is an IPv4-compatible address"
    inner = address.sixtofour
    if inner is not None and refusal(inner) is not None:
        return f"{address} carries {inner}: {refusal(inner)}"
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, through the operating system."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class Target:
    """A URL and the checked address to connect to for it."""

    url: httpx.URL
    address: IPAddress

    @property
    def host(self) -> str:
        """The host as sent in `Host` and TLS SNI (IDNA-encoded)."""
        return self.url.raw_host.decode("ascii")

    @property
    def pinned_url(self) -> httpx.URL:
        return self.url.copy_with(host=str(self.address))

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.url.port is None else f"{host}:{self.url.port}"


class AddressGuard:
    """Turns a webhook URL into a `Target`, or raises `Refused` (or `Unresolved`)."""

    def __init__(
        self,
        *,
        allow_http: bool,
        allow_hosts: Iterable[str] = (),
        resolver: Resolver = system_resolver,
    ) -> None:
        self._schemes = {"https", "http"} if allow_http else {"https"}
        self._allow_hosts = frozenset(host.lower() for host in allow_hosts)
        self._resolver = resolver

    async def target(self, url: str) -> Target:
        parsed = self._parsed(url)
        host = parsed.raw_host.decode("ascii").lower()
        addresses = await self._addresses(host, parsed.port or _default_port(parsed))
        if host not in self._allow_hosts:
            for address in addresses:
                reason = refusal(address)
                if reason is not None:
                    raise Refused(f"{host} resolves to a non-public address: {reason}")
        return Target(parsed, addresses[0])

    def _parsed(self, url: str) -> httpx.URL:
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError):
            raise Refused("not a valid URL") from None
        if parsed.scheme not in self._schemes:
            raise Refused(f"scheme {parsed.scheme!r} is not allowed ({', '.join(self._schemes)})")
        if not parsed.raw_host:
            raise Refused("the URL has no host")
        if parsed.userinfo:
            raise Refused("credentials in the URL are not allowed")
        return parsed

    async def _addresses(self, host: str, port: int) -> list[IPAddress]:
        literal = _literal(host)
        if literal is not None:
            return [literal]
        try:
            answers = await self._resolver(host, port)
        except OSError as exc:
            raise Unresolved(f"{host} did not resolve: {exc}") from None
        if not answers:
            raise Unresolved(f"{host} did not resolve")
        return [ipaddress.ip_address(answer) for answer in answers]


def _literal(host: str) -> IPAddress | None:
    """`host` as an IP address when it is written as one, legacy IPv4 spellings included."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _default_port(url: httpx.URL) -> int:
    return 443 if url.scheme == "https" else 80
