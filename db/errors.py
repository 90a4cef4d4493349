"""Errors the database layer raises; callers switch on the class, never on message text.

PostgreSQL errors are told apart by SQLSTATE: our own codes (`CG001` for a refused
generation_status move, `CG002` for a write from a stale run) and the standard data-exception
class (22xxx) for bad arguments.
"""

from __future__ import annotations

import asyncpg

INVALID_TRANSITION_SQLSTATE = "CG001"
STALE_RUN_SQLSTATE = "CG002"

# What a lost or refused connection looks like from asyncpg (everything else is a real error).
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InternalClientError,  # a connection the server just dropped, seen mid-protocol
    asyncpg.InterfaceError,  # "connection is closed": the pool handed out a dropped connection
)


class DatabaseUnavailable(Exception):
    """PostgreSQL could not be reached or dropped the connection (retryable)."""


class InvalidTransition(Exception):
    """PostgreSQL refused a generation_status move (SQLSTATE CG001); not retryable."""


class StaleRun(Exception):
    """The course belongs to another run (SQLSTATE CG002); the write changed nothing."""


class InvalidArgument(ValueError):
    """A function refused its arguments (bad step, status, outcome, id; SQLSTATE class 22)."""


def translate(exc: BaseException) -> BaseException:
    """The typed error for `exc`, or `exc` itself when it is none of ours."""
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate == INVALID_TRANSITION_SQLSTATE:
        return InvalidTransition(str(exc))
    if sqlstate == STALE_RUN_SQLSTATE:
        return StaleRun(str(exc))
    if isinstance(exc, asyncpg.DataError):
        return InvalidArgument(str(exc))
    if isinstance(exc, CONNECTION_ERRORS):
        return DatabaseUnavailable(f"{type(exc).__name__}: {exc}")
    return exc
