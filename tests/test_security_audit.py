"""The dependency audit of `make lint` (tools/audit_deps.py), offline: known advisories against pins, pip-audit's
report read right, and an unreachable vulnerability service reported as "not audited" instead of a silent pass."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def audit_deps() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_deps", ROOT / "tools" / "audit_deps.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["audit_deps"] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


def _lock(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "requirements.lock"
    path.write_text(text)
    return path


def test_the_shipped_pins_are_past_every_known_advisory(audit_deps: ModuleType) -> None:
    pins = audit_deps.read_pins(ROOT / "requirements.lock")
    assert {"voila", "jupyter-server", "jupyterlab", "nbconvert", "tornado", "jinja2"} <= set(pins)
    assert audit_deps.known_hits(pins) == []


def test_an_old_pin_is_flagged_with_its_advisory(audit_deps: ModuleType, tmp_path: Path) -> None:
    pins = audit_deps.read_pins(_lock(tmp_path, "voila==0.5.5\njupyter_server==2.14.1\nJinja2==3.1.5  # old\n"))
    assert audit_deps.known_hits(pins) == [
        "voila 0.5.5 < 0.5.6: GHSA-2q59-h24c-w6fg / CVE-2024-30265 (any file readable through /static/)",
        "jinja2 3.1.5 < 3.1.6: GHSA-cpwx-vrp4-4pq7 / CVE-2025-27516 (sandbox escape via |attr)",
    ]


REPORT = {
    "dependencies": [
        {"name": "tornado", "version": "6.4", "vulns": [{"id": "GHSA-x", "fix_versions": ["6.4.2"]}]},
        {"name": "requests", "version": "2.34.2", "vulns": []},
        {"name": "private-pkg", "skip_reason": "Dependency not found on PyPI"},
    ]
}


def test_a_pip_audit_report_is_read_and_a_vulnerability_fails(
    audit_deps: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert audit_deps.summarise(REPORT) == (["tornado 6.4: GHSA-x (fixed in 6.4.2)"], 2, 1)
    code = audit_deps.audit(_lock(tmp_path, "voila==0.5.13\n"), runner=lambda lock: (1, json.dumps(REPORT), ""))
    assert code == 1
    assert "VULNERABLE tornado 6.4: GHSA-x" in capsys.readouterr().out


@pytest.mark.parametrize(
    "answer",
    [
        (0, json.dumps({"dependencies": [{"name": "a", "skip_reason": "not found"}]}), ""),
        (1, "", "Traceback ...\nrequests.exceptions.ConnectionError: Failed to resolve 'api.osv.dev'"),
    ],
    ids=["nothing-known", "unreachable"],
)
def test_an_unusable_service_is_reported_not_passed_silently(
    audit_deps: ModuleType,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    answer: tuple[int, str, str],
) -> None:
    lock = _lock(tmp_path, "voila==0.5.13\n")
    monkeypatch.delenv("AUDIT_STRICT", raising=False)
    assert audit_deps.audit(lock, runner=lambda path: answer) == 0
    assert "NOT AUDITED" in capsys.readouterr().out
    monkeypatch.setenv("AUDIT_STRICT", "1")
    assert audit_deps.audit(lock, runner=lambda path: answer) == 1
