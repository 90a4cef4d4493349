"""The sender refuses what the guard refuses without touching the network, connects to the
checked address with the URL's host in `Host` and SNI, follows no redirect, and reads at most
64 KiB of an answer within its deadline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from webhooks.addresses import AddressGuard
from webhooks.sender import MAX_RESPONSE_BYTES, Sender

# Public-looking names the injected resolver answers; nothing here reaches real DNS.
DNS = {"hooks.example.com": ["93.184.216.34"], "internal.example.com": ["10.20.30.40"]}
SSRF_URLS = [
    "https://127.0.0.1/hook",
    "https://10.0.0.1/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://[::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "http://2130706433/hook",
    "https://internal.example.com/hook",  # its DNS answer is private
    "http://hooks.example.com/hook",  # http is not allowed here
]


def streamed(
    status: int, body: bytes = b"", headers: dict[str, str] | None = None
) -> httpx.Response:
    """An answer whose body is streamed, as from the network (not read in advance)."""

    async def chunks() -> AsyncIterator[bytes]:
        yield body

    return httpx.Response(status, headers=headers, content=chunks())


async def resolve(host: str, port: int) -> list[str]:
    assert host in DNS, f"unexpected DNS lookup of {host!r}"
    return DNS[host]


class Recorder:
    """A transport that records requests and answers with `handler` (or fails the test)."""

    def __init__(self, handler: httpx.MockTransport | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self._inner = handler

    def transport(self) -> httpx.MockTransport:
        async def handle(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            if self._inner is None:
                pytest.fail(f"the sender connected for {request.url}")
            return await self._inner.handle_async_request(request)

        return httpx.MockTransport(handle)


def sender(recorder: Recorder, timeout: float = 5.0, *, allow_http: bool = False) -> Sender:
    guard = AddressGuard(allow_http=allow_http, resolver=resolve)
    return Sender(guard, recorder.transport(), timeout=timeout)


@pytest.mark.parametrize("url", SSRF_URLS)
async def test_refused_urls_never_connect(url: str) -> None:
    """Loopback, private, metadata, IPv6 loopback and mapped forms, the integer spelling, a
    private DNS answer and plain http are refused for good; no request is made."""
    recorder = Recorder()
    outcome = await sender(recorder).send(url, {}, b"{}")
    assert (outcome.delivered, outcome.permanent) == (False, True)
    assert recorder.requests == []


@pytest.mark.parametrize("url", [u for u in SSRF_URLS if u != "http://hooks.example.com/hook"])
async def test_refused_for_their_address_even_where_http_is_allowed(url: str) -> None:
    """With plain http allowed, every address above (the integer spelling of 127.0.0.1 among
    them) is still refused for where it points; no request is made."""
    recorder = Recorder()
    outcome = await sender(recorder, allow_http=True).send(url, {}, b"{}")
    assert (outcome.delivered, outcome.permanent) == (False, True)
    assert recorder.requests == []


async def test_the_request_goes_to_the_checked_address() -> None:
    """The POST goes to the resolved address, `Host` and SNI carrying the URL's host."""
    recorder = Recorder(httpx.MockTransport(lambda request: streamed(204)))
    outcome = await sender(recorder).send(
        "https://hooks.example.com/in?x=1", {"webhook-id": "msg_1"}, b'{"a":1}'
    )
    assert outcome.delivered
    (request,) = recorder.requests
    assert str(request.url) == "https://93.184.216.34/in?x=1"
    assert request.headers["host"] == "hooks.example.com"
    assert request.extensions["sni_hostname"] == "hooks.example.com"
    assert request.headers["webhook-id"] == "msg_1"
    assert request.content == b'{"a":1}'


async def test_a_redirect_is_not_followed() -> None:
    """A 302 to loopback is a failed attempt; the loopback address is never asked."""
    redirect = httpx.MockTransport(
        lambda request: streamed(302, headers={"Location": "http://127.0.0.1:9/steal"})
    )
    recorder = Recorder(redirect)
    outcome = await sender(recorder).send("https://hooks.example.com/hook", {}, b"{}")
    assert (outcome.delivered, outcome.permanent) == (False, False)
    assert outcome.error is not None
    assert outcome.error.startswith("HTTP 302")
    assert [request.url.host for request in recorder.requests] == ["93.184.216.34"]


async def test_at_most_64_kib_of_an_answer_is_read() -> None:
    """A huge error answer is read only up to 64 KiB."""
    served = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal served
        for _ in range(10_000):
            served += 8192
            yield b"x" * 8192

    recorder = Recorder(httpx.MockTransport(lambda request: httpx.Response(500, content=endless())))
    outcome = await sender(recorder).send("https://hooks.example.com/hook", {}, b"{}")
    assert not outcome.delivered
    assert MAX_RESPONSE_BYTES <= served <= MAX_RESPONSE_BYTES + 8192


async def test_a_receiver_that_hangs_times_out() -> None:
    """No answer within the deadline is a failed (retryable) attempt."""

    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        return streamed(200)

    recorder = Recorder(httpx.MockTransport(hang))
    outcome = await sender(recorder, timeout=0.2).send("https://hooks.example.com/h", {}, b"{}")
    assert (outcome.delivered, outcome.permanent) == (False, False)
    assert outcome.error == "no answer within 0.2 s"
