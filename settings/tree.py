"""The whole settings tree: one field per group, and the group each field is read with."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata

from settings.admission import AdmissionSettings
from settings.gateway import ApiSettings, AuthSettings, StatusSettings
from settings.observability import LogSettings, TelemetrySettings
from settings.runs import ReconcileSettings, WorkflowSettings
from settings.stages import StageSettings
from settings.stores import StoreSettings
from settings.temporal import TemporalSettings, WorkerSettings
from settings.webhooks import WebhookSettings

VERSION = metadata.version("course-generator")


@dataclass(frozen=True)
class Settings:
    stores: StoreSettings
    temporal: TemporalSettings
    auth: AuthSettings
    api: ApiSettings
    admission: AdmissionSettings
    workflow: WorkflowSettings
    stages: StageSettings
    worker: WorkerSettings
    reconcile: ReconcileSettings
    log: LogSettings
    telemetry: TelemetrySettings
    webhook: WebhookSettings
    status: StatusSettings
    version: str = VERSION

    @property
    def environment(self) -> str:
        return self.log.environment


# Each field of `Settings` and the group it is read with.
GROUPS = {
    "stores": StoreSettings,
    "temporal": TemporalSettings,
    "auth": AuthSettings,
    "api": ApiSettings,
    "admission": AdmissionSettings,
    "workflow": WorkflowSettings,
    "stages": StageSettings,
    "worker": WorkerSettings,
    "reconcile": ReconcileSettings,
    "log": LogSettings,
    "telemetry": TelemetrySettings,
    "webhook": WebhookSettings,
    "status": StatusSettings,
}
