"""One dedicated connection LISTENing on a channel, re-established whenever it is lost.

A pooled connection cannot hold a LISTEN (the pool resets it on release), so each listener opens
its own. After every (re)connection `on_connected` runs: notifications sent while no connection
listened are lost, and the caller re-reads whatever it follows from the rows. When it fails it
is retried (backing off) for as long as the connection lasts, so a change made while no
connection listened is never missed for good.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import structlog
from opentelemetry.instrumentation.utils import suppress_instrumentation

from db.errors import CONNECTION_ERRORS

CONNECT_TIMEOUT = 5.0
LISTEN_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, asyncpg.PostgresError)
MAX_BACKOFF = 10.0
log = structlog.get_logger("db.listen")


class Listener:
    """LISTEN `channel` on a connection of its own; `on_payload` gets each notification's payload
    (called on the event loop, so it must not block); `on_connected` runs after each connect.

    A lost connection is noticed when asyncpg sees it close, or at the latest by the health
    check every `check_every` seconds; reconnection backs off from 0.5 s up to 10 s.
    """

    def __init__(
        self,
        dsn: str,
        channel: str,
        on_payload: Callable[[str], None],
        on_connected: Callable[[], Awaitable[None]],
        *,
        application_name: str,
        check_every: float = 10.0,
    ) -> None:
        self._dsn, self._channel, self._name = dsn, channel, application_name
        self._on_payload, self._on_connected = on_payload, on_connected
        self._check_every = check_every
        self.listening = asyncio.Event()
        self.settled = asyncio.Event()  # the first attempt is over: listening, or it failed
        self.connections = 0
        self.resyncs = 0  # successful runs of `on_connected`

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Listener]:
        """Listen in a background task while the context is open."""
        task = asyncio.create_task(self.run(), name=f"listen-{self._channel}")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run(self) -> None:
        """Connect, listen until the connection is lost, reconnect; until cancelled. Nothing
        here is traced (nor what its notification handlers start): background upkeep would only
        fill the traces with root database spans."""
        with suppress_instrumentation():
            await self._run()

    async def _run(self) -> None:
        delay = 0.5
        while True:
            conn = await self._connect()
            if conn is None:
                self.settled.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)
                continue
            delay = 0.5
            try:
                await self._listen(conn)
            finally:
                self.listening.clear()
                conn.terminate()
            log.warning("listener connection lost; reconnecting", channel=self._channel)

    async def _connect(self) -> asyncpg.Connection | None:
        try:
            return await asyncpg.connect(
                self._dsn,
                timeout=CONNECT_TIMEOUT,
                server_settings={"application_name": self._name},
            )
        except LISTEN_ERRORS as exc:
            log.warning("listener cannot connect", channel=self._channel, error=str(exc))
            return None

    async def _listen(self, conn: asyncpg.Connection) -> None:
        """Returns when the connection is lost."""
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        try:
            await conn.add_listener(self._channel, self._notified)
        except LISTEN_ERRORS as exc:
            log.warning("listener cannot listen", channel=self._channel, error=str(exc))
            self.settled.set()
            return
        self.connections += 1
        self.listening.set()
        if not await self._resynchronise():
            self.settled.set()
            if not await self._retry_resynchronise(lost):
                return
        self.settled.set()
        while await self._alive(conn, lost):
            pass

    async def _resynchronise(self) -> bool:
        try:
            await self._on_connected()
        except Exception:
            log.exception("listener resynchronisation failed", channel=self._channel)
            return False
        self.resyncs += 1
        return True

    async def _retry_resynchronise(self, lost: asyncio.Event) -> bool:
        """Run `on_connected` again, backing off from 0.5 s up to 10 s, until it succeeds
        (True) or the connection is lost (False: the next connection resynchronises)."""
        delay = 0.5
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), delay)
            if lost.is_set():
                return False
            if await self._resynchronise():
                return True
            delay = min(delay * 2, MAX_BACKOFF)

    async def _alive(self, conn: asyncpg.Connection, lost: asyncio.Event) -> bool:
        """Wait up to `check_every` for the connection to drop; then check it answers."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(lost.wait(), self._check_every)
        if lost.is_set():
            return False
        try:
            await conn.fetchval("SELECT 1", timeout=CONNECT_TIMEOUT)
        except LISTEN_ERRORS:
            return False
        return True

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        try:
            self._on_payload(str(payload))
        except Exception:
            log.exception("notification handler failed", channel=self._channel)
