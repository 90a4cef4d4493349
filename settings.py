"""Settings: one tree of groups, each reading its documented environment name exactly.

Only composition roots (`worker.py`, the API lifespan, the launcher, CLIs) call
`load_settings()`; everything else receives plain values.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tiers import Tier
from workflows.steps import STAGE_NAMES, stage_queue

DEV_JWT_SECRET = "development-only-secret-change-me-0123456789abcdef"
DEV_WEBHOOK_SECRET = "development-only-webhook-secret-change-me-0123456789"
VERSION = metadata.version("course-generator")
# Where a process started on its own (not by `make run`) looks when no URL is set.
PROJECT_DATABASE = "course_generator"
DEFAULT_DATABASE_URL = f"postgresql://postgres@127.0.0.1:5432/{PROJECT_DATABASE}"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# The span exporters OTEL_TRACES_EXPORTER may name (OTLP over OTEL_EXPORTER_OTLP_PROTOCOL).
TraceExporter = Literal["console", "otlp"]


class _Group(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=False
    )


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class StoreSettings(_Group):
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")
    redis_key_prefix: str = Field(default="cg", validation_alias="REDIS_KEY_PREFIX")
    db_pool_min_size: int = Field(default=1, ge=0, validation_alias="DB_POOL_MIN_SIZE")
    db_pool_max_size: int = Field(default=10, ge=1, validation_alias="DB_POOL_MAX_SIZE")
    stuck_after_seconds: int = Field(default=900, gt=0, validation_alias="STUCK_AFTER_SECONDS")

    @property
    def database_dsn(self) -> str:
        return self.database_url or DEFAULT_DATABASE_URL

    @property
    def redis_dsn(self) -> str:
        return self.redis_url or DEFAULT_REDIS_URL


class TemporalSettings(_Group):
    address: str = Field(default="localhost:7233", validation_alias="TEMPORAL_ADDRESS")
    namespace: str = Field(default="default", validation_alias="TEMPORAL_NAMESPACE")
    api_key: str | None = Field(default=None, validation_alias="TEMPORAL_API_KEY")
    tls_cert: Path | None = Field(default=None, validation_alias="TEMPORAL_TLS_CERT")
    tls_key: Path | None = Field(default=None, validation_alias="TEMPORAL_TLS_KEY")
    tls_ca: Path | None = Field(default=None, validation_alias="TEMPORAL_TLS_CA")
    task_queue: str = Field(default="course-generation", validation_alias="TEMPORAL_TASK_QUEUE")
    stage_task_queue: str = Field(
        default="course-generation-stages", validation_alias="TEMPORAL_STAGE_TASK_QUEUE"
    )
    dev_port: int = Field(default=7233, ge=1, le=65535, validation_alias="TEMPORAL_DEV_PORT")
    ui_port: int = Field(default=8233, ge=1, le=65535, validation_alias="TEMPORAL_UI_PORT")
    fairness_enabled: bool = Field(default=False, validation_alias="TEMPORAL_FAIRNESS_ENABLED")

    def stage_queue(self, stage: str) -> str:
        """`<TEMPORAL_STAGE_TASK_QUEUE>.<stage>`: the queue of `stage` and its cleanup."""
        return stage_queue(self.stage_task_queue, stage)


class AuthSettings(_Group):
    jwt_secret: str = Field(default=DEV_JWT_SECRET, validation_alias="SUPABASE_JWT_SECRET")
    jwks_url: str | None = Field(default=None, validation_alias="SUPABASE_JWKS_URL")
    audience: str = Field(default="authenticated", validation_alias="AUTH_AUDIENCE")
    issuer: str | None = Field(default=None, validation_alias="AUTH_ISSUER")
    leeway_seconds: int = Field(default=30, ge=0, validation_alias="AUTH_LEEWAY_SECONDS")
    allow_anonymous: bool = Field(default=False, validation_alias="ALLOW_ANONYMOUS")


class ApiSettings(_Group):
    host: str = Field(default="127.0.0.1", min_length=1, validation_alias="API_HOST")
    port: int = Field(default=8000, ge=1, le=65535, validation_alias="API_PORT")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="CORS_ORIGINS"
    )
    allow_http_webhooks: bool = Field(default=False, validation_alias="ALLOW_HTTP_WEBHOOKS")
    start_rate_limit_per_minute: int = Field(
        default=30, ge=0, validation_alias="START_RATE_LIMIT_PER_MINUTE"
    )
    start_timeout_seconds: float = Field(default=5, gt=0, validation_alias="START_TIMEOUT_SECONDS")
    # uvicorn's own options (`auto` takes uvloop and httptools, both installed with uvicorn).
    loop: Literal["auto", "asyncio", "uvloop"] = Field(default="auto", validation_alias="API_LOOP")
    http: Literal["auto", "h11", "httptools"] = Field(default="auto", validation_alias="API_HTTP")
    backlog: int = Field(default=2048, ge=1, validation_alias="API_BACKLOG")

    _split = field_validator("cors_origins", mode="before")(_split_csv)


@dataclass(frozen=True)
class TierPolicy:
    tier: Tier
    limit: int
    weight: float
    priority_key: int


class AdmissionSettings(_Group):
    limit_free: int = Field(default=1, ge=0, validation_alias="TIER_LIMIT_FREE")
    limit_basic: int = Field(default=2, ge=0, validation_alias="TIER_LIMIT_BASIC")
    limit_standard: int = Field(default=3, ge=0, validation_alias="TIER_LIMIT_STANDARD")
    limit_trial: int = Field(default=5, ge=0, validation_alias="TIER_LIMIT_TRIAL")
    limit_premium: int = Field(default=5, ge=0, validation_alias="TIER_LIMIT_PREMIUM")
    weight_free: float = Field(default=1, gt=0, validation_alias="TIER_WEIGHT_FREE")
    weight_basic: float = Field(default=3, gt=0, validation_alias="TIER_WEIGHT_BASIC")
    weight_standard: float = Field(default=5, gt=0, validation_alias="TIER_WEIGHT_STANDARD")
    weight_trial: float = Field(default=5, gt=0, validation_alias="TIER_WEIGHT_TRIAL")
    weight_premium: float = Field(default=10, gt=0, validation_alias="TIER_WEIGHT_PREMIUM")
    priority_free: int = Field(default=4, ge=1, le=5, validation_alias="TIER_PRIORITY_FREE")
    priority_basic: int = Field(default=3, ge=1, le=5, validation_alias="TIER_PRIORITY_BASIC")
    priority_standard: int = Field(default=2, ge=1, le=5, validation_alias="TIER_PRIORITY_STANDARD")
    priority_trial: int = Field(default=2, ge=1, le=5, validation_alias="TIER_PRIORITY_TRIAL")
    priority_premium: int = Field(default=1, ge=1, le=5, validation_alias="TIER_PRIORITY_PREMIUM")
    global_cap: int = Field(default=10_000, ge=1, validation_alias="ADMISSION_GLOBAL_CAP")
    retry_after_seconds: int = Field(
        default=30, ge=1, validation_alias="ADMISSION_RETRY_AFTER_SECONDS"
    )

    def policy(self, tier: Tier) -> TierPolicy:
        name = tier.value.lower()
        return TierPolicy(
            tier=tier,
            limit=getattr(self, f"limit_{name}"),
            weight=getattr(self, f"weight_{name}"),
            priority_key=getattr(self, f"priority_{name}"),
        )


class WorkflowSettings(_Group):
    execution_timeout_seconds: int = Field(
        default=21_600, ge=60, validation_alias="WORKFLOW_EXECUTION_TIMEOUT_SECONDS"
    )
    deadline_margin_seconds: int = Field(
        default=300, ge=0, validation_alias="RUN_DEADLINE_MARGIN_SECONDS"
    )
    progress_retry_seconds: float = Field(
        default=120, gt=0, validation_alias="PROGRESS_RETRY_SECONDS"
    )


def _capacity_of(stage: str) -> Any:
    """`STAGE_CAPACITY_<STAGE>`: the slots of one stage's queue, unset = `STAGE_CAPACITY`."""
    return Field(default=None, ge=1, validation_alias=f"STAGE_CAPACITY_{stage.upper()}")


class StageSettings(_Group):
    capacity: int = Field(default=10, ge=1, validation_alias="STAGE_CAPACITY")
    capacity_document_processing: int | None = _capacity_of("document_processing")
    capacity_structure_analysis: int | None = _capacity_of("structure_analysis")
    capacity_structure_generation: int | None = _capacity_of("structure_generation")
    capacity_text_generation: int | None = _capacity_of("text_generation")
    capacity_finalization: int | None = _capacity_of("finalization")
    resource_tuner: bool = Field(default=False, validation_alias="STAGE_RESOURCE_TUNER")
    heartbeat_timeout_seconds: float = Field(
        default=10, gt=0, validation_alias="STAGE_HEARTBEAT_TIMEOUT_SECONDS"
    )
    start_to_close_seconds: float = Field(
        default=3600, gt=0, validation_alias="STAGE_START_TO_CLOSE_SECONDS"
    )
    cleanup_activities: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="STAGE_CLEANUP_ACTIVITIES"
    )
    simulated_stages: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(STAGE_NAMES), validation_alias="SIMULATED_STAGES"
    )
    simulated_stage_seconds: float = Field(
        default=2, ge=0, validation_alias="SIMULATED_STAGE_SECONDS"
    )

    def capacity_for(self, stage: str) -> int:
        """Slots of `stage`'s queue per worker: `STAGE_CAPACITY_<STAGE>`, else `STAGE_CAPACITY`."""
        own: int | None = getattr(self, f"capacity_{stage}")
        return self.capacity if own is None else own

    @field_validator("cleanup_activities", "simulated_stages", mode="before")
    @classmethod
    def _stage_list(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in ("", "none"):
            return []
        if isinstance(value, str) and value.strip().lower() == "all":
            return list(STAGE_NAMES)
        return _split_csv(value)

    @field_validator("cleanup_activities", "simulated_stages")
    @classmethod
    def _known_stages(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(STAGE_NAMES))
        if unknown:
            raise ValueError(f"unknown stage(s) {unknown}; known: {', '.join(STAGE_NAMES)}")
        return value


class WorkerSettings(_Group):
    """The orchestration worker's Temporal options (docs/operations.md, "Tuning"): how many
    workflow tasks it polls and runs at once, how many runs it keeps cached (sticky), and the
    slots of its local and regular activities."""

    workflow_task_slots: int = Field(
        default=100, ge=1, validation_alias="WORKER_WORKFLOW_TASK_SLOTS"
    )
    workflow_task_pollers: int = Field(
        default=20, ge=2, validation_alias="WORKER_WORKFLOW_TASK_POLLERS"
    )
    nonsticky_poll_ratio: float = Field(
        default=0.5, gt=0, lt=1, validation_alias="WORKER_NONSTICKY_POLL_RATIO"
    )
    sticky_cache_size: int = Field(default=1000, ge=0, validation_alias="WORKER_STICKY_CACHE_SIZE")
    sticky_timeout_seconds: float = Field(
        default=10, gt=0, validation_alias="WORKER_STICKY_TIMEOUT_SECONDS"
    )
    local_activity_slots: int = Field(
        default=100, ge=1, validation_alias="WORKER_LOCAL_ACTIVITY_SLOTS"
    )
    activity_slots: int = Field(default=100, ge=1, validation_alias="WORKER_ACTIVITY_SLOTS")
    activity_pollers: int = Field(default=5, ge=1, validation_alias="WORKER_ACTIVITY_POLLERS")
    poller_autoscaling: bool = Field(default=False, validation_alias="WORKER_POLLER_AUTOSCALING")
    workflow_sandbox: bool = Field(default=True, validation_alias="WORKER_WORKFLOW_SANDBOX")


class StatusSettings(_Group):
    """How many closed runs' describes one gateway process keeps, and for how long: a closed
    run's status never changes, so a status read of it needs no second describe."""

    closed_run_cache_size: int = Field(
        default=10_000, ge=0, validation_alias="CLOSED_RUN_CACHE_SIZE"
    )
    closed_run_cache_ttl_seconds: float = Field(
        default=600, gt=0, validation_alias="CLOSED_RUN_CACHE_TTL_SECONDS"
    )


class ReconcileSettings(_Group):
    """The reconciler's Schedule: every `interval_seconds` (0 = no Schedule: off)."""

    interval_seconds: int = Field(default=60, ge=0, validation_alias="RECONCILE_INTERVAL_SECONDS")
    grace_seconds: int = Field(default=120, ge=0, validation_alias="RECONCILE_GRACE_SECONDS")


class TelemetrySettings(_Group):
    """Traces (OpenTelemetry's own variable names) and the worker's Prometheus endpoint."""

    traces_exporter: Annotated[list[TraceExporter], NoDecode] = Field(
        default_factory=list, validation_alias="OTEL_TRACES_EXPORTER"
    )
    otlp_endpoint: str | None = Field(default=None, validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT")
    otlp_protocol: Literal["grpc", "http/protobuf"] = Field(
        default="grpc", validation_alias="OTEL_EXPORTER_OTLP_PROTOCOL"
    )
    service_name: str = Field(
        default="course-generator", min_length=1, validation_alias="OTEL_SERVICE_NAME"
    )
    worker_metrics_port: int = Field(
        default=9464, ge=0, le=65535, validation_alias="WORKER_METRICS_PORT"
    )

    @field_validator("traces_exporter", mode="before")
    @classmethod
    def _exporters(cls, value: object) -> object:
        """A comma list as the SDK reads it; `none` (or nothing) means no exporter."""
        names = _split_csv(value.lower() if isinstance(value, str) else value)
        return [name for name in names if name != "none"] if isinstance(names, list) else names


class WebhookSettings(_Group):
    secret: str = Field(
        default=DEV_WEBHOOK_SECRET, min_length=16, validation_alias="WEBHOOK_SECRET"
    )
    retry_seconds: int = Field(default=3600, gt=0, validation_alias="WEBHOOK_RETRY_SECONDS")
    allow_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="WEBHOOK_ALLOW_HOSTS"
    )

    @field_validator("allow_hosts", mode="before")
    @classmethod
    def _hosts(cls, value: object) -> object:
        hosts = _split_csv(value)
        return [str(h).lower() for h in hosts] if isinstance(hosts, list) else hosts


class LogSettings(_Group):
    level: Literal["debug", "info", "warning", "error", "critical"] = Field(
        default="info", validation_alias="LOG_LEVEL"
    )
    format: Literal["json", "console"] = Field(default="json", validation_alias="LOG_FORMAT")
    environment: Literal["development", "test", "production"] = Field(
        default="development", validation_alias="ENVIRONMENT"
    )

    @field_validator("level", "format", "environment", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value


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


class SettingsError(Exception):
    """A bad setting; `str()` is one line naming the environment variable."""


_GROUPS = {
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


def load_settings(env_file: str | Path | None = ".env") -> Settings:
    """Build the whole tree from the environment (and `env_file`), or raise `SettingsError`."""
    groups: dict[str, Any] = {}
    for name, group in _GROUPS.items():
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
