"""Loading the tree: every group from the environment (and `.env`), the rules across groups,
and the one line a bad value prints."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from settings.gateway import DEV_JWT_SECRET
from settings.tree import GROUPS, Settings
from settings.webhooks import DEV_WEBHOOK_SECRET


class SettingsError(Exception):
    """A bad setting; `str()` is one line naming the environment variable."""


def load_settings(env_file: str | Path | None = ".env") -> Settings:
    """Build the whole tree from the environment (and `env_file`), or raise `SettingsError`."""
    groups: dict[str, Any] = {}
    for name, group in GROUPS.items():
        try:
            groups[name] = group(_env_file=env_file)
        except ValidationError as exc:
            raise SettingsError(_one_line(exc)) from None
    settings = Settings(**groups)
    _check_across_groups(settings)
    return settings


def _check_across_groups(settings: Settings) -> None:
    """Rules that tie settings of different groups together."""
    refused = _development_secrets(settings) if settings.environment == "production" else []
    if refused:
        raise SettingsError(
            f"invalid setting {refused[0]}: the development secret is refused when "
            "ENVIRONMENT=production"
        )
    run = settings.workflow
    floor = run.progress_retry_seconds + settings.stages.heartbeat_timeout_seconds + 10
    if run.deadline_margin_seconds < floor:
        raise SettingsError(
            "invalid setting RUN_DEADLINE_MARGIN_SECONDS: must be at least PROGRESS_RETRY_SECONDS"
            f" + STAGE_HEARTBEAT_TIMEOUT_SECONDS + 10 = {floor:g} (got"
            f" {run.deadline_margin_seconds})"
        )
    if run.deadline_margin_seconds >= run.execution_timeout_seconds:
        raise SettingsError(
            "invalid setting RUN_DEADLINE_MARGIN_SECONDS: must be less than"
            f" WORKFLOW_EXECUTION_TIMEOUT_SECONDS ({run.execution_timeout_seconds})"
        )


def _development_secrets(settings: Settings) -> list[str]:
    """The secrets still set to their development default (refused in production)."""
    defaults = {
        "SUPABASE_JWT_SECRET": settings.auth.jwt_secret == DEV_JWT_SECRET,
        "WEBHOOK_SECRET": settings.webhook.secret == DEV_WEBHOOK_SECRET,
    }
    return [name for name, is_default in defaults.items() if is_default]


def settings_or_exit(env_file: str | Path | None = ".env") -> Settings:
    """`load_settings()` for composition roots: a bad value prints one line and exits 2."""
    try:
        return load_settings(env_file)
    except SettingsError as exc:
        _die(str(exc))


def _die(line: str) -> NoReturn:
    print(line, file=sys.stderr)
    raise SystemExit(2)


def _one_line(exc: ValidationError) -> str:
    error = exc.errors()[0]
    name = ".".join(str(part) for part in error["loc"]) or "?"
    given = error.get("input")
    shown = f" (got {given!r})" if isinstance(given, str | int | float) else ""
    return f"invalid setting {name}: {error['msg']}{shown}"
