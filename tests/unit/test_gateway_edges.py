"""Gateway edges without services: the listen address of `python -m api`, and the caller's
webhook URL in the Web UI details of a run (markdown that must not render)."""

from __future__ import annotations

from typing import Any

import pytest
import uvicorn

import api.__main__ as api_main
import observability
import telemetry
from tests.factories import make_settings
from workflows.start import _details
from workflows.types import CourseGenerationInput

COURSE = "5f0c9a8e-1b7d-4c39-9a53-6f1f3d2b8e41"


@pytest.mark.parametrize(("env", "host"), [({}, "127.0.0.1"), ({"API_HOST": "0.0.0.0"}, "0.0.0.0")])
def test_api_listens_on_api_host(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], host: str
) -> None:
    """`python -m api` serves on API_HOST, loopback unless set."""
    served: dict[str, Any] = {}
    monkeypatch.setattr(api_main, "settings_or_exit", lambda: make_settings(env))
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: served.update(kwargs))
    monkeypatch.setattr(telemetry, "configure_logging", lambda *a, **k: None)
    monkeypatch.setattr(observability, "configure_tracing", lambda *a, **k: None)
    api_main.main()
    assert (served["host"], served["port"]) == (host, 8000)


def _webhook_line(url: str | None) -> str:
    inp = CourseGenerationInput(COURSE, "u-1", "FREE", "req-1", "token", url)
    details = _details(inp, "FREE", 4)
    lines = [line for line in details.splitlines() if line.startswith("- **Webhook:**")]
    assert len(lines) == 1, details
    return lines[0].removeprefix("- **Webhook:** ")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (None, "—"),
        ("https://lms.example.com/hook", "`https://lms.example.com/hook`"),
        (
            "https://x.example/**bold**[link](javascript:alert(1))<img>",
            "`https://x.example/**bold**[link](javascript:alert(1))<img>`",
        ),
        ("https://x.example/a`b", "`` https://x.example/a`b ``"),
        ("https://x.example/``a```", "```` https://x.example/``a``` ````"),
        ("https://x.example/\n\n# Owned\r\t", "`https://x.example/\\n\\n# Owned\\r\\t`"),
    ],
    ids=["none", "plain", "markdown", "backtick", "backtick-runs", "control-characters"],
)
def test_webhook_url_is_one_inline_code_span(url: str | None, shown: str) -> None:
    """The webhook URL is shown as one code span on its own line: no markdown in it renders,
    a backtick cannot close the span, and a newline cannot start a block."""
    assert _webhook_line(url) == shown
