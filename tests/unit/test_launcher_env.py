"""The environment `make run`'s launcher gives its children: spans printed on stdout unless the
environment chose an exporter."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.launcher import Launcher
from tests.factories import make_settings


def test_traces_default_to_the_console_when_unset(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    launcher = Launcher(make_settings(), tmp_path)
    assert launcher.env["OTEL_TRACES_EXPORTER"] == "console"


@pytest.mark.parametrize("chosen", ["otlp", "none"])
def test_an_exporter_the_environment_chose_is_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, chosen: str
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", chosen)
    assert Launcher(make_settings(), tmp_path).env["OTEL_TRACES_EXPORTER"] == chosen
