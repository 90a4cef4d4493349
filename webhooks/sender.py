"""One webhook POST: to the address the guard checked, with the URL's host in `Host` and in
the TLS SNI (so the certificate is verified for that host), no redirects, 5 s for everything
(resolution included), and at most 64 KiB of the answer read."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx

from webhooks.addresses import AddressGuard, Refused, Target, Unresolved

TIMEOUT_SECONDS = 5.0
MAX_RESPONSE_BYTES = 64 * 1024
ERROR_TEXT = 200  # characters of a failed answer kept for the outbox row and the log


@dataclass(frozen=True)
class Outcome:
    """`delivered` on a 2xx; `permanent` when the URL itself is refused (no retry helps)."""

    delivered: bool
    permanent: bool = False
    error: str | None = None


def default_transport() -> httpx.AsyncHTTPTransport:
    """A fresh connection per delivery: a kept-alive TLS connection to one address must not
    serve another host name."""
    return httpx.AsyncHTTPTransport(limits=httpx.Limits(max_keepalive_connections=0))


class Sender:
    """POSTs signed events; `transport` is what reaches the network (tests replace it)."""

    def __init__(
        self,
        guard: AddressGuard,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self._guard, self._timeout = guard, timeout
        self._client = httpx.AsyncClient(
            transport=transport or default_transport(),
            follow_redirects=False,
            trust_env=False,  # an environment proxy would connect to the host, not the address
            timeout=timeout,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> Outcome:
        try:
            async with asyncio.timeout(self._timeout):
                target = await self._guard.target(url)
                return await self._post(target, headers, body)
        except Refused as exc:
            return Outcome(False, permanent=True, error=f"refused: {exc}")
        except TimeoutError:
            return Outcome(False, error=f"no answer within {self._timeout:g} s")
        except (Unresolved, httpx.HTTPError, OSError) as exc:
            return Outcome(False, error=f"{type(exc).__name__}: {exc}"[:ERROR_TEXT])

    async def _post(self, target: Target, headers: dict[str, str], body: bytes) -> Outcome:
        request = self._client.build_request(
            "POST",
            target.pinned_url,
            headers={**headers, "Host": target.host_header, "Content-Type": "application/json"},
            content=body,
            extensions={"sni_hostname": target.host} if target.url.scheme == "https" else {},
        )
        response = await self._client.send(request, stream=True)
        try:
            answer = await _read_capped(response)
        finally:
            await response.aclose()
        if response.is_success:
            return Outcome(True)
        text = answer.decode("utf-8", errors="replace")
        return Outcome(False, error=f"HTTP {response.status_code}: {text}"[:ERROR_TEXT])


async def _read_capped(response: httpx.Response) -> bytes:
    """The answer's first 64 KiB at most; the rest is never read."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_RESPONSE_BYTES:
            break  # the caller closes the response, and its connection, unread
    return b"".join(chunks)[:MAX_RESPONSE_BYTES]
