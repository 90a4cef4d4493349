"""Where a webhook may go: public addresses only (every resolved one), https unless http is
allowed, no credentials; allow-listed hosts skip the address rule; legacy IPv4 spellings are
judged as the address they spell, without asking DNS."""

from __future__ import annotations

import ipaddress

import pytest

from webhooks.addresses import AddressGuard, Refused, Resolver, Unresolved, refusal

REFUSED = [
    "127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "100.127.255.254", "0.0.0.0", "224.0.0.1", "239.255.255.250", "240.0.0.1",
    "255.255.255.255", "198.18.0.1", "192.0.2.1", "::1", "::", "fe80::1", "fc00::1", "fd12::1",
    "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:8.8.8.8", "::127.0.0.1",
    "::10.0.0.1", "2002:7f00:1::", "2002:a00:1::", "64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1",
    "2001:db8::1", "64:ff9b::808:808",
]  # fmt: skip
PUBLIC = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "2002:5db8:d822::"]


@pytest.mark.parametrize("address", REFUSED)
def test_non_public_addresses_are_refused(address: str) -> None:
    """Loopback, private, link-local, CGNAT, multicast, reserved, unspecified, documentation
    addresses, IPv4-mapped/-compatible and NAT64 forms, and 6to4 forms of refused IPv4 addresses
    are refused."""
    assert refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    """Global unicast addresses, and 6to4 forms of public IPv4 addresses, pass."""
    assert refusal(ipaddress.ip_address(address)) is None


def resolver_of(answers: dict[str, list[str]]) -> Resolver:
    """A resolver answering from `answers`; any other lookup fails the test."""

    async def resolve(host: str, port: int) -> list[str]:
        assert host in answers, f"unexpected DNS lookup of {host!r}"
        return answers[host]

    return resolve


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/hook",
        "http://0x7f.1/hook",
        "http://127.1/hook",
        "http://0177.0.0.1/hook",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]:8443/hook",
        "https://169.254.169.254/latest/meta-data",
    ],
)
async def test_literal_addresses_are_judged_without_dns(url: str) -> None:
    """Addresses written in the URL, legacy IPv4 spellings included, are refused without
    reaching the resolver (httpx itself rejects the octal spelling as an invalid URL)."""
    guard = AddressGuard(allow_http=True, resolver=resolver_of({}))
    with pytest.raises(Refused, match=r"non-public|valid URL"):
        await guard.target(url)


async def test_every_resolved_address_must_be_public() -> None:
    """A host with one private answer among public ones is refused."""
    guard = AddressGuard(
        allow_http=False,
        resolver=resolver_of({"mixed.example": ["93.184.216.34", "10.1.2.3"]}),
    )
    with pytest.raises(Refused, match=r"10\.1\.2\.3"):
        await guard.target("https://mixed.example/hook")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example/hook", "scheme"),
        ("ftp://hooks.example/hook", "scheme"),
        ("https://user:pw@hooks.example/hook", "credentials"),
        ("https:///hook", "host"),
        ("not a url", "scheme"),
    ],
)
async def test_url_rules(url: str, reason: str) -> None:
    """https only, no credentials, a host; refused before any lookup."""
    guard = AddressGuard(allow_http=False, resolver=resolver_of({}))
    with pytest.raises(Refused, match=reason):
        await guard.target(url)


async def test_the_target_pins_the_checked_address() -> None:
    """The target connects to the address that was checked, keeping host and port for the Host
    header and TLS."""
    guard = AddressGuard(
        allow_http=False, resolver=resolver_of({"hooks.example": ["93.184.216.34"]})
    )
    target = await guard.target("https://Hooks.Example:8443/in?x=1")
    assert str(target.pinned_url) == "https://93.184.216.34:8443/in?x=1"
    assert (target.host, target.host_header) == ("hooks.example", "hooks.example:8443")


async def test_allow_listed_hosts_skip_the_address_rule() -> None:
    """A host in the allow-list may resolve to loopback (development receivers); http needs
    ALLOW_HTTP_WEBHOOKS even then."""
    resolver = resolver_of({"receiver.test": ["127.0.0.1"]})
    guard = AddressGuard(
        allow_http=True, allow_hosts=["Receiver.test", "127.0.0.1"], resolver=resolver
    )
    assert str((await guard.target("http://receiver.test:9/h")).address) == "127.0.0.1"
    assert str((await guard.target("http://127.0.0.1:9/h")).address) == "127.0.0.1"
    strict = AddressGuard(allow_http=False, allow_hosts=["127.0.0.1"], resolver=resolver)
    with pytest.raises(Refused, match="scheme"):
        await strict.target("http://127.0.0.1:9/h")


async def test_a_failed_lookup_is_not_a_refusal() -> None:
    """DNS that does not answer may answer later: `Unresolved`, not `Refused`."""

    async def failing(host: str, port: int) -> list[str]:
        raise OSError("temporary failure in name resolution")

    guard = AddressGuard(allow_http=False, resolver=failing)
    with pytest.raises(Unresolved):
        await guard.target("https://hooks.example/h")
