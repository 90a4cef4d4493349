"""Settings: one tree of groups, each reading its documented environment name exactly.

Each group lives with its concern (`stores`, `temporal`, `gateway`, `admission`, `runs`,
`stages`, `observability`, `webhooks`), the tree in `tree`, loading and its one-line errors in
`loader`; every name is importable from `settings` itself. Only composition roots (the
`worker` package, the API lifespan, the launcher, CLIs) call `load_settings()`; everything else
receives plain values.
"""

from settings.admission import AdmissionSettings, TierPolicy
from settings.gateway import DEV_JWT_SECRET, ApiSettings, AuthSettings, StatusSettings
from settings.loader import SettingsError, load_settings, settings_or_exit
from settings.observability import LogSettings, TelemetrySettings, TraceExporter
from settings.runs import ReconcileSettings, WorkflowSettings
from settings.stages import StageSettings
from settings.stores import (
    DEFAULT_DATABASE_URL,
    DEFAULT_REDIS_URL,
    PROJECT_DATABASE,
    StoreSettings,
)
from settings.temporal import TemporalSettings, WorkerSettings
from settings.tree import GROUPS, VERSION, Settings
from settings.webhooks import DEV_WEBHOOK_SECRET, WebhookSettings

__all__ = [
    "DEFAULT_DATABASE_URL",
    "DEFAULT_REDIS_URL",
    "DEV_JWT_SECRET",
    "DEV_WEBHOOK_SECRET",
    "GROUPS",
    "PROJECT_DATABASE",
    "VERSION",
    "AdmissionSettings",
    "ApiSettings",
    "AuthSettings",
    "LogSettings",
    "ReconcileSettings",
    "Settings",
    "SettingsError",
    "StageSettings",
    "StatusSettings",
    "StoreSettings",
    "TelemetrySettings",
    "TemporalSettings",
    "TierPolicy",
    "TraceExporter",
    "WebhookSettings",
    "WorkerSettings",
    "WorkflowSettings",
    "load_settings",
    "settings_or_exit",
]
