"""Soak: 500 consecutive report runs in one worker process, with no growth in open files, threads, kernels,
processes or memory beyond a bound, and nothing left running when the worker exits.

The worker is a child process running exactly what a runner worker runs (``run_job`` with the default warm-kernel
engine, its kernel recycled every 40 notebooks, HTML for every report and a PDF for every fifth through the
worker's persistent Chromium), on the probe notebook and a real SQLite ledger. It samples itself and its
descendants every 25 runs; the test compares the samples after warm-up (run 50) with the last ones.
Measured figures are printed (pytest -s) and recorded in the README's "What it survives" table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import psutil
import pytest
from sqlalchemy import text

from report_lib.warehouse.engine import create_warehouse_engine

ROOT = Path(__file__).resolve().parent.parent
PROBE = ROOT / "tests" / "data" / "notebooks" / "runner_probe.ipynb"
RUNS = 500
SAMPLE_EVERY = 25
WARM = 50
FD_SLACK = 8  # a recycle may be half-way when sampled (old kernel's sockets closing, new one's opening)
MEMORY_SLACK_MB = 150

WORKER = """
import json, os, sys, time
from pathlib import Path
import psutil
from report_lib.params import NotebookParameters
from report_lib.periods import parse_period
from report_lib.run.execute import ExecutionOptions, RetryPolicy, pin_threads, run_job
from report_lib.run.notebooks import NotebookSpec
from report_lib.run.plan import Job
from report_lib.warehouse.engine import create_warehouse_engine, ensure_schema

pin_threads()
probe, url, out, runs, every = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
ensure_schema(create_warehouse_engine(url))
period = parse_period("2024-03-04:2024-03-10")
declared = ("store", "store_name", "period_start", "period_end", "period_label")
me = psutil.Process()

def sample(done, seconds):
    children = []
    for process in me.children(recursive=True):
        try:
            children.append((" ".join(process.cmdline()), process.memory_info().rss))
        except psutil.Error:
            continue
    own = me.memory_info().rss
    print(json.dumps({
        "runs": done, "seconds": round(seconds, 1), "fds": me.num_fds(), "threads": me.num_threads(),
        "processes": len(children),
        "kernels": sum("ipykernel_launcher" in cmd for cmd, _ in children),
        "browser_processes": sum("chromium" in cmd for cmd, _ in children),
        "rss_mb": round((own + sum(rss for _, rss in children)) / 2**20, 1),
        "own_rss_mb": round(own / 2**20, 1),
    }), flush=True)

started = time.perf_counter()
failed = 0
for done in range(1, runs + 1):
    store = f"S{done % 7:02d}"
    params = NotebookParameters(store=store, store_name=f"Store {store}", period_start=period.start,
                                period_end=period.end, period_label=period.label)
    injected = {k: v for k, v in params.for_papermill().items() if k in declared}
    job = Job(store, NotebookSpec("probe", "Probe", probe), period, params, injected, out / store)
    formats = ("html", "pdf") if done % 5 == 0 else ("html",)
    options = ExecutionOptions(database_url=url, batch=f"soak-{done // 100}", formats=formats,
                               retry=RetryPolicy(retries=0), execution_timeout=120)
    result = run_job(job, options)
    failed += result.status != "ok"
    if failed:
        print(json.dumps({"error": result.error}), flush=True)
        sys.exit(1)
    if done % every == 0:
        sample(done, time.perf_counter() - started)
"""


@pytest.mark.slow
def test_500_report_runs_leak_no_files_processes_or_memory(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    marker = uuid.uuid4().hex
    env = {**os.environ, "REPORT_FAULT_MARKER": marker}
    started = time.monotonic()
    command = [sys.executable, "-c", textwrap.dedent(WORKER), str(PROBE), url, str(tmp_path / "reports")]
    command += [str(RUNS), str(SAMPLE_EVERY)]
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    wall = time.monotonic() - started
    samples = [json.loads(line) for line in finished.stdout.splitlines() if line.startswith("{")]
    assert finished.returncode == 0, (samples[-1:], finished.stderr[-2000:])
    assert [s["runs"] for s in samples] == list(range(SAMPLE_EVERY, RUNS + 1, SAMPLE_EVERY))
    print(f"\nsoak: {RUNS} runs in {wall:.0f} s")
    for sample in samples:
        print(sample)

    warm = next(s for s in samples if s["runs"] == WARM)
    late = samples[-4:]
    assert max(s["fds"] for s in late) <= warm["fds"] + FD_SLACK
    assert max(s["threads"] for s in late) <= warm["threads"] + 2
    # one warm kernel, replaced (never added to) every 40 notebooks: none between two kernels, never two
    assert all(s["kernels"] <= 1 for s in samples) and all(s["kernels"] == 1 for s in late)
    # Chromium starts and ends renderer processes by itself; everything else (kernel, playwright driver) is fixed
    assert all(s["processes"] - s["browser_processes"] == warm["processes"] - warm["browser_processes"] for s in late)
    assert max(s["browser_processes"] for s in late) <= warm["browser_processes"] + 2
    assert max(s["rss_mb"] for s in late) <= warm["rss_mb"] + MEMORY_SLACK_MB
    assert max(s["own_rss_mb"] for s in late) <= warm["own_rss_mb"] + 50

    engine = create_warehouse_engine(url)
    with engine.connect() as conn:
        statuses = dict(conn.execute(text("SELECT status, count(*) FROM report_runs GROUP BY status")).all())
    engine.dispose()
    assert statuses == {"ok": RUNS}
    assert not list((tmp_path / "reports").rglob("*.partial.ipynb")) and not list(
        (tmp_path / "reports").rglob(".*.tmp")
    )
    time.sleep(3)  # kernels and browsers notice their parent is gone within about a second
    leftovers = [
        p.pid
        for p in psutil.process_iter(["environ"])
        if (p.info["environ"] or {}).get("REPORT_FAULT_MARKER") == marker
    ]
    assert leftovers == []
