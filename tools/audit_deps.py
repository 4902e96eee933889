"""`make lint`'s dependency audit: known advisories of the pinned Jupyter/Voila stack, then pip-audit on the pins.

1. KNOWN_ADVISORIES (below, kept by hand) are checked against requirements.lock offline: a pin older than the
   fixed version fails the audit. These are the advisories of the packages that serve or render notebooks.
2. pip-audit (PyPI's vulnerability data, or OSV with PIP_AUDIT_SERVICE=osv) audits every pin. When the service
   cannot be reached or knows none of the pins, that is reported plainly and the audit does not fail, since the
   check above still ran; AUDIT_STRICT=1 makes it a failure (for a CI runner with network access).

Exit code 0 when nothing vulnerable was found, 1 otherwise.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"


@dataclass(frozen=True)
class Advisory:
    package: str
    ids: str
    fixed: str  # the first fixed version; pins below it are vulnerable
    summary: str


KNOWN_ADVISORIES = (
    Advisory("voila", "GHSA-2q59-h24c-w6fg / CVE-2024-30265", "0.5.6", "any file readable through /static/"),
    Advisory("jupyter-server", "CVE-2023-39968", "2.7.2", "open redirect after login"),
    Advisory("jupyter-server", "CVE-2023-40170", "2.7.2", "cross-site inclusion of /files/"),
    Advisory("jupyter-server", "GHSA-hrw6-wg82-cm62 / CVE-2024-35178", "2.14.1", "Windows NTLMv2 hash disclosure"),
    Advisory("jupyterlab", "CVE-2024-22421", "4.0.11", "token exposure via links to third-party sites"),
    Advisory("jupyterlab", "CVE-2024-43805", "4.2.5", "HTML injection in Markdown preview (DOM clobbering)"),
    Advisory("jupyterlab", "GHSA-vvfj-2jqx-52jm / CVE-2025-59842", "4.4.8", "links without noopener"),
    Advisory("jupyter-lsp", "CVE-2024-22415", "2.2.2", "unauthenticated file access through the LSP endpoints"),
    Advisory("jupyter-core", "CVE-2022-39286", "4.11.2", "code execution from the working directory"),
    Advisory("nbconvert", "CVE-2021-32862", "6.5.1", "XSS in converted notebooks"),
    Advisory("tornado", "CVE-2024-52804", "6.4.2", "cookie parsing denial of service"),
    Advisory("tornado", "CVE-2025-47287", "6.5", "multipart/form-data logging denial of service"),
    Advisory("jinja2", "GHSA-q2x7-8rv6-6q7h / CVE-2024-56326", "3.1.5", "sandbox escape via str.format"),
    Advisory("jinja2", "GHSA-cpwx-vrp4-4pq7 / CVE-2025-27516", "3.1.6", "sandbox escape via |attr"),
)


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> dict[str, Version]:
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, sep, version = line.split("#", 1)[0].strip().partition("==")
        if sep:
            pins[normalise(name)] = Version(version.strip())
    return pins


def known_hits(pins: dict[str, Version]) -> list[str]:
    """One line per pin older than the fixed version of a known advisory."""
    return [
        f"{a.package} {pins[a.package]} < {a.fixed}: {a.ids} ({a.summary})"
        for a in KNOWN_ADVISORIES
        if a.package in pins and pins[a.package] < Version(a.fixed)
    ]


def summarise(report: dict[str, object]) -> tuple[list[str], int, int]:
    """(one line per vulnerability, packages audited, packages skipped) from pip-audit's JSON."""
    found, audited, skipped = [], 0, 0
    for dependency in report.get("dependencies", []):  # type: ignore[union-attr]
        if dependency.get("skip_reason"):
            skipped += 1
            continue
        audited += 1
        for vuln in dependency.get("vulns", []):
            fixes = ", ".join(vuln.get("fix_versions", [])) or "no fix yet"
            found.append(f"{dependency['name']} {dependency.get('version', '?')}: {vuln['id']} (fixed in {fixes})")
    return found, audited, skipped


def run_pip_audit(lock: Path) -> tuple[int, str, str]:
    command = [sys.executable, "-m", "pip_audit", "-r", str(lock), "--no-deps", "--disable-pip"]
    command += ["--format", "json", "--progress-spinner", "off", "-s", os.environ.get("PIP_AUDIT_SERVICE", "pypi")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    return done.returncode, done.stdout, done.stderr


def audit(lock: Path = LOCK, *, runner: Callable[[Path], tuple[int, str, str]] = run_pip_audit) -> int:
    failures = known_hits(read_pins(lock))
    print(f"known advisories: {len(KNOWN_ADVISORIES)} checked against {lock.name}, {len(failures)} affect the pins")
    returncode, out, err = runner(lock)
    try:
        vulns, audited, skipped = summarise(json.loads(out))
    except json.JSONDecodeError:
        vulns, audited, skipped = [], 0, 0
        reason = (err.strip().splitlines() or ["no output"])[-1]
    else:
        reason = f"the service knew {audited} of {audited + skipped} pinned packages"
    failures += vulns
    if audited == 0:
        print(
            f"pip-audit: NOT AUDITED: the vulnerability service could not be used ({reason}). Run `make lint` where "
            "pypi.org (or api.osv.dev with PIP_AUDIT_SERVICE=osv) answers; AUDIT_STRICT=1 makes this a failure."
        )
        if os.environ.get("AUDIT_STRICT") == "1":
            return 1
    else:
        print(f"pip-audit: {audited} packages audited, {skipped} skipped, {len(vulns)} vulnerabilities")
    for line in failures:
        print(f"  VULNERABLE {line}")
    return 1 if failures or (audited and returncode not in (0, 1)) else 0


if __name__ == "__main__":
    sys.exit(audit(Path(sys.argv[1]) if len(sys.argv) > 1 else LOCK))
