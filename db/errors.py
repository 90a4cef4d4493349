"""Errors the database layer raises; callers switch on the class, never on message text."""

from __future__ import annotations

import asyncpg

TRANSITION_MESSAGE = "invalid generation_status transition"

# What a lost or refused connection looks like from asyncpg (everything else is a real error).
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InternalClientError,  # a connection the server just dropped, seen mid-protocol
)


class DatabaseUnavailable(Exception):
    """PostgreSQL could not be reached or dropped the connection (retryable)."""


class InvalidTransition(Exception):
    """PostgreSQL refused a generation_status move (SQLSTATE P0001); not retryable."""


class InvalidArgument(ValueError):
    """A progress function refused its arguments (bad step, status, outcome; SQLSTATE 22023)."""


def translate(exc: BaseException) -> BaseException:
    """The typed error for `exc`, or `exc` itself when it is none of ours."""
    if isinstance(exc, asyncpg.RaiseError) and str(exc).startswith(TRANSITION_MESSAGE):
        return InvalidTransition(str(exc))
    if isinstance(exc, asyncpg.InvalidParameterValueError | asyncpg.InvalidTextRepresentationError):
        return InvalidArgument(str(exc))
    if isinstance(exc, asyncpg.DataError) and "invalid input for query argument" in str(exc):
        return InvalidArgument(str(exc))
    if isinstance(exc, CONNECTION_ERRORS) or _closed(exc):
        return DatabaseUnavailable(f"{type(exc).__name__}: {exc}")
    return exc


def _closed(exc: BaseException) -> bool:
    return isinstance(exc, asyncpg.InterfaceError) and "closed" in str(exc)
