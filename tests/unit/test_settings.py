"""Settings: every documented environment name is read exactly as written, whatever group holds
it; a bad value is one clear line naming the variable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from settings import DEV_JWT_SECRET, DEV_WEBHOOK_SECRET, SettingsError, load_settings
from tiers import Tier
from workflows.steps import STAGE_NAMES

# (environment name, value to set, path into the tree, the value expected there)
EXACT_NAMES = [
    ("DATABASE_URL", "postgresql://u@h:5/d", "stores.database_url", "postgresql://u@h:5/d"),
    ("REDIS_URL", "redis://h:1/0", "stores.redis_url", "redis://h:1/0"),
    ("TEMPORAL_ADDRESS", "t:7000", "temporal.address", "t:7000"),
    ("TEMPORAL_NAMESPACE", "ns", "temporal.namespace", "ns"),
    ("TEMPORAL_API_KEY", "k", "temporal.api_key", "k"),
    ("TEMPORAL_TLS_CERT", "/c.pem", "temporal.tls_cert", Path("/c.pem")),
    ("TEMPORAL_TLS_KEY", "/k.pem", "temporal.tls_key", Path("/k.pem")),
    ("TEMPORAL_TLS_CA", "/ca.pem", "temporal.tls_ca", Path("/ca.pem")),
    ("TEMPORAL_TASK_QUEUE", "q1", "temporal.task_queue", "q1"),
    ("TEMPORAL_STAGE_TASK_QUEUE", "q2", "temporal.stage_task_queue", "q2"),
    ("TEMPORAL_DEV_PORT", "17233", "temporal.dev_port", 17233),
    ("TEMPORAL_UI_PORT", "18233", "temporal.ui_port", 18233),
    ("SUPABASE_JWT_SECRET", "s" * 32, "auth.jwt_secret", "s" * 32),
    ("SUPABASE_JWKS_URL", "https://x/jwks", "auth.jwks_url", "https://x/jwks"),
    ("AUTH_AUDIENCE", "aud", "auth.audience", "aud"),
    ("AUTH_ISSUER", "https://iss", "auth.issuer", "https://iss"),
    ("ALLOW_ANONYMOUS", "true", "auth.allow_anonymous", True),
    ("ALLOW_HTTP_WEBHOOKS", "true", "api.allow_http_webhooks", True),
    ("API_PORT", "9000", "api.port", 9000),
    ("CORS_ORIGINS", "https://a.example, https://b.example", "api.cors_origins",
     ["https://a.example", "https://b.example"]),
    ("TIER_LIMIT_FREE", "7", "admission.limit_free", 7),
    ("TIER_LIMIT_BASIC", "8", "admission.limit_basic", 8),
    ("TIER_LIMIT_STANDARD", "9", "admission.limit_standard", 9),
    ("TIER_LIMIT_TRIAL", "10", "admission.limit_trial", 10),
    ("TIER_LIMIT_PREMIUM", "11", "admission.limit_premium", 11),
    ("ADMISSION_GLOBAL_CAP", "12", "admission.global_cap", 12),
    ("ADMISSION_RETRY_AFTER_SECONDS", "13", "admission.retry_after_seconds", 13),
    ("START_RATE_LIMIT_PER_MINUTE", "0", "api.start_rate_limit_per_minute", 0),
    ("START_TIMEOUT_SECONDS", "2.5", "api.start_timeout_seconds", 2.5),
    ("WORKFLOW_EXECUTION_TIMEOUT_SECONDS", "3600", "workflow.execution_timeout_seconds", 3600),
    ("RUN_DEADLINE_MARGIN_SECONDS", "600", "workflow.deadline_margin_seconds", 600),
    ("PROGRESS_RETRY_SECONDS", "30", "workflow.progress_retry_seconds", 30),
    ("STAGE_CAPACITY", "1", "stages.capacity", 1),
    ("STAGE_CAPACITY_DOCUMENT_PROCESSING", "2", "stages.capacity_document_processing", 2),
    ("STAGE_CAPACITY_STRUCTURE_ANALYSIS", "3", "stages.capacity_structure_analysis", 3),
    ("STAGE_CAPACITY_STRUCTURE_GENERATION", "4", "stages.capacity_structure_generation", 4),
    ("STAGE_CAPACITY_TEXT_GENERATION", "5", "stages.capacity_text_generation", 5),
    ("STAGE_CAPACITY_FINALIZATION", "6", "stages.capacity_finalization", 6),
    ("STAGE_RESOURCE_TUNER", "true", "stages.resource_tuner", True),
    ("STAGE_HEARTBEAT_TIMEOUT_SECONDS", "2", "stages.heartbeat_timeout_seconds", 2),
    ("STAGE_CLEANUP_ACTIVITIES", "text_generation,finalization", "stages.cleanup_activities",
     ["text_generation", "finalization"]),
    ("SIMULATED_STAGES", "none", "stages.simulated_stages", []),
    ("SIMULATED_STAGE_SECONDS", "0", "stages.simulated_stage_seconds", 0),
    ("RECONCILE_INTERVAL_SECONDS", "5", "reconcile.interval_seconds", 5),
    ("RECONCILE_GRACE_SECONDS", "10", "reconcile.grace_seconds", 10),
    ("LOG_LEVEL", "debug", "log.level", "debug"),
    ("LOG_FORMAT", "console", "log.format", "console"),
    ("ENVIRONMENT", "test", "log.environment", "test"),
    ("WEBHOOK_SECRET", "w" * 32, "webhook.secret", "w" * 32),
    ("WEBHOOK_RETRY_SECONDS", "60", "webhook.retry_seconds", 60),
    ("WEBHOOK_ALLOW_HOSTS", "Localhost, hooks.test", "webhook.allow_hosts",
     ["localhost", "hooks.test"]),
    ("OTEL_TRACES_EXPORTER", "console,otlp", "telemetry.traces_exporter", ["console", "otlp"]),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317", "telemetry.otlp_endpoint",
     "http://collector:4317"),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", "telemetry.otlp_protocol", "http/protobuf"),
    ("OTEL_SERVICE_NAME", "cg-eu", "telemetry.service_name", "cg-eu"),
    ("WORKER_METRICS_PORT", "0", "telemetry.worker_metrics_port", 0),
    ("WORKER_WORKFLOW_TASK_SLOTS", "31", "worker.workflow_task_slots", 31),
    ("WORKER_WORKFLOW_TASK_POLLERS", "32", "worker.workflow_task_pollers", 32),
    ("WORKER_NONSTICKY_POLL_RATIO", "0.75", "worker.nonsticky_poll_ratio", 0.75),
    ("WORKER_STICKY_CACHE_SIZE", "0", "worker.sticky_cache_size", 0),
    ("WORKER_STICKY_TIMEOUT_SECONDS", "3", "worker.sticky_timeout_seconds", 3),
    ("WORKER_LOCAL_ACTIVITY_SLOTS", "33", "worker.local_activity_slots", 33),
    ("WORKER_ACTIVITY_SLOTS", "34", "worker.activity_slots", 34),
    ("WORKER_ACTIVITY_POLLERS", "35", "worker.activity_pollers", 35),
    ("WORKER_POLLER_AUTOSCALING", "true", "worker.poller_autoscaling", True),
    ("WORKER_WORKFLOW_SANDBOX", "false", "worker.workflow_sandbox", False),
    ("WORKER_GC_FREEZE", "false", "worker.gc_freeze", False),
    ("API_GC_FREEZE", "false", "api.gc_freeze", False),
    ("API_LOOP", "asyncio", "api.loop", "asyncio"),
    ("API_HTTP", "h11", "api.http", "h11"),
    ("API_BACKLOG", "64", "api.backlog", 64),
    ("CLOSED_RUN_CACHE_SIZE", "0", "status.closed_run_cache_size", 0),
    ("CLOSED_RUN_CACHE_TTL_SECONDS", "30", "status.closed_run_cache_ttl_seconds", 30),
]  # fmt: skip


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, *_ in EXACT_NAMES:
        monkeypatch.delenv(name, raising=False)


def _get(tree: object, path: str) -> object:
    for part in path.split("."):
        tree = getattr(tree, part)
    return tree


@pytest.mark.parametrize(("name", "raw", "path", "expected"), EXACT_NAMES)
def test_each_documented_name_is_read_exactly(
    monkeypatch: pytest.MonkeyPatch, name: str, raw: str, path: str, expected: object
) -> None:
    """Each documented environment name lands in its place in the settings tree."""
    monkeypatch.setenv(name, raw)
    assert _get(load_settings(env_file=None), path) == expected


def test_defaults_are_the_documented_ones() -> None:
    """With nothing set: per-user limits FREE 1, BASIC 2, STANDARD 3, TRIAL and PREMIUM 5;
    priority keys from PREMIUM (1) to FREE (4); the local dev server and its default queue;
    every stage simulated; 10 stage slots; 6 h runs failing themselves 5 min early, course
    writes retried for 2 min; JSON logs in development; webhooks retried for an hour, no host
    exempt from the address rule."""
    s = load_settings(env_file=None)
    limits = {t: s.admission.policy(t).limit for t in Tier}
    assert limits == {Tier.FREE: 1, Tier.BASIC: 2, Tier.STANDARD: 3, Tier.TRIAL: 5, Tier.PREMIUM: 5}
    keys = {t: s.admission.policy(t).priority_key for t in Tier}
    assert keys == {Tier.PREMIUM: 1, Tier.TRIAL: 2, Tier.STANDARD: 2, Tier.BASIC: 3, Tier.FREE: 4}
    assert s.admission.policy(Tier.PREMIUM).weight == 10
    assert (s.temporal.address, s.temporal.task_queue) == ("localhost:7233", "course-generation")
    assert s.stages.simulated_stages == list(STAGE_NAMES)
    assert (s.stages.capacity, s.api.start_rate_limit_per_minute) == (10, 30)
    assert s.workflow.execution_timeout_seconds == 21_600
    assert (s.workflow.deadline_margin_seconds, s.workflow.progress_retry_seconds) == (300, 120)
    assert (s.log.format, s.environment) == ("json", "development")
    assert (s.webhook.retry_seconds, s.webhook.allow_hosts) == (3600, [])
    telemetry = s.telemetry
    assert (telemetry.traces_exporter, telemetry.otlp_protocol) == ([], "grpc")
    assert (telemetry.service_name, telemetry.worker_metrics_port) == ("course-generator", 9464)
    assert (s.status.closed_run_cache_size, s.status.closed_run_cache_ttl_seconds) == (10_000, 600)


def test_no_trace_exporter_is_spelled_none(monkeypatch: pytest.MonkeyPatch) -> None:
    """`OTEL_TRACES_EXPORTER=none` (any case) chooses no exporter, as the SDK reads it."""
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "None")
    assert load_settings(env_file=None).telemetry.traces_exporter == []


def test_stage_capacity_per_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    """`STAGE_CAPACITY_<STAGE>` sizes that stage's queue; the others take `STAGE_CAPACITY`;
    every stage has its own queue under `TEMPORAL_STAGE_TASK_QUEUE`."""
    monkeypatch.setenv("STAGE_CAPACITY", "3")
    monkeypatch.setenv("STAGE_CAPACITY_TEXT_GENERATION", "1")
    s = load_settings(env_file=None)
    capacities = {stage: s.stages.capacity_for(stage) for stage in STAGE_NAMES}
    assert capacities == {stage: 1 if stage == "text_generation" else 3 for stage in STAGE_NAMES}
    queue = s.temporal.stage_queue("text_generation")
    assert queue == "course-generation-stages.text_generation"


def test_prefixed_or_lowercase_names_are_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the exact names count: a field name or a nested-style name changes nothing."""
    monkeypatch.setenv("LIMIT_FREE", "9")
    monkeypatch.setenv("ADMISSION__LIMIT_FREE", "9")
    assert load_settings(env_file=None).admission.limit_free == 1


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("TIER_LIMIT_FREE", "lots"),
        ("API_PORT", "70000"),
        ("LOG_FORMAT", "xml"),
        ("SIMULATED_STAGES", "document_processing,baking"),
        ("STAGE_CAPACITY_TEXT_GENERATION", "0"),
        ("START_TIMEOUT_SECONDS", "-1"),
        ("ALLOW_ANONYMOUS", "maybe"),
        ("WEBHOOK_RETRY_SECONDS", "0"),
        ("WEBHOOK_SECRET", "short"),
        ("OTEL_TRACES_EXPORTER", "zipkin"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "thrift"),
        ("WORKER_METRICS_PORT", "70000"),
        ("WORKER_WORKFLOW_TASK_POLLERS", "1"),
        ("WORKER_NONSTICKY_POLL_RATIO", "1"),
        ("WORKER_ACTIVITY_SLOTS", "0"),
        ("API_LOOP", "trio"),
        ("API_HTTP", "h3"),
    ],
)
def test_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, raw: str) -> None:
    """A bad value raises one line that names the environment variable."""
    monkeypatch.setenv(name, raw)
    with pytest.raises(SettingsError) as caught:
        load_settings(env_file=None)
    message = str(caught.value)
    assert name in message
    assert "\n" not in message


def test_dev_secret_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    """ENVIRONMENT=production without a real SUPABASE_JWT_SECRET, or without a real
    WEBHOOK_SECRET, is refused."""
    monkeypatch.setenv("ENVIRONMENT", "production")
    with pytest.raises(SettingsError, match="SUPABASE_JWT_SECRET"):
        load_settings(env_file=None)
    monkeypatch.setenv("SUPABASE_JWT_SECRET", "a-real-secret-" + "x" * 32)
    with pytest.raises(SettingsError, match="WEBHOOK_SECRET"):
        load_settings(env_file=None)
    monkeypatch.setenv("WEBHOOK_SECRET", "a-real-webhook-secret-" + "y" * 32)
    loaded = load_settings(env_file=None)
    assert loaded.auth.jwt_secret != DEV_JWT_SECRET
    assert loaded.webhook.secret != DEV_WEBHOOK_SECRET


@pytest.mark.parametrize(
    ("margin", "timeout", "refused"),
    [("139", "21600", True), ("140", "21600", False), ("300", "300", True)],
)
def test_deadline_margin_rule(
    monkeypatch: pytest.MonkeyPatch, margin: str, timeout: str, refused: bool
) -> None:
    """RUN_DEADLINE_MARGIN_SECONDS must be at least PROGRESS_RETRY_SECONDS (120) +
    STAGE_HEARTBEAT_TIMEOUT_SECONDS (10) + 10, and below the execution timeout."""
    monkeypatch.setenv("RUN_DEADLINE_MARGIN_SECONDS", margin)
    monkeypatch.setenv("WORKFLOW_EXECUTION_TIMEOUT_SECONDS", timeout)
    if not refused:
        assert load_settings(env_file=None).workflow.deadline_margin_seconds == int(margin)
        return
    with pytest.raises(SettingsError) as error:
        load_settings(env_file=None)
    assert str(error.value).startswith("invalid setting RUN_DEADLINE_MARGIN_SECONDS: ")
    assert "\n" not in str(error.value)


def test_env_file_is_read(tmp_path: Path) -> None:
    """A `.env` file supplies values."""
    env_file = tmp_path / ".env"
    env_file.write_text("TIER_LIMIT_BASIC=4\nTEMPORAL_NAMESPACE=from-file\n")
    s = load_settings(env_file=env_file)
    assert (s.admission.limit_basic, s.temporal.namespace) == (4, "from-file")


def test_process_start_stops_with_one_line() -> None:
    """A composition root given a bad value exits non-zero printing one line naming it."""
    code = "import settings; settings.settings_or_exit(None)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"TIER_LIMIT_PREMIUM": "-3", "PATH": ""},
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("invalid setting TIER_LIMIT_PREMIUM")
