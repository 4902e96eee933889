"""The nightly run end to end: the plain pipeline against ours, per stage, in the same run, alternating.

plain: papermill's default engine (a new kernel per notebook), nbconvert started per report (a new Python process
rendering the report page), Chromium started per PDF (``--print-to-pdf``), a new kaleido browser per email, and a
full rebuild of daily_metrics. ours: what `runner.py run` does: the warm engine (a kernel per worker, imports once,
reset between notebooks), the nbconvert exporter kept per worker, one headless Chromium per worker (playwright), one
kaleido session per run for the emails' chart images, and the incremental refresh (here with no new lines: its
floor; a late day of lines at 10M is bench_warehouse's one-day incremental row).

Both run every notebook of every store for the week 2025-W26 with HTML + PDF on 2 worker processes (BLAS pinned to
one thread each), then write the portal page, one email per store (PNG charts, PDF attached) and the regional
digests to an outbox. The same jobs, the same SQLite warehouse, the same orchestration; pipelines alternate within
each repeat pair and the table shows medians. ``execute``, ``HTML`` and ``PDF`` are seconds of worker time summed
over the reports and divided by the 2 workers (their share of the wall clock: ours interleaves them in each
worker); ``refresh``, ``email`` and ``end to end`` are wall clock. Peak memory per worker: the largest proportional
set size (PSS) of a worker process with its children (kernel, browser and driver, nbconvert, Chromium), sampled
every 0.5 s. CPU seconds: user + system time of the bench process (the sampler's own excluded) and of every process
it started, read from /proc by the same sampler (workers, kernels, browsers and their drivers, nbconvert): what the
run costs whatever the neighbours do (this machine is shared; the load average shows how busy it was). The sampler
keeps each process's last reading, so up to 0.5 s of a process that exits between readings is missed. The
empty-notebook rows time papermill on a one-cell notebook (``pass``): the default engine starts a kernel each time;
the warm engine's first notebook pays the kernel start and the imports, the ones after it not.

Warehouses (generated once, cached in benchmarks/out/, gitignored): demo = 10 stores x 730 days (~1.1M order lines);
50 stores x 730 days at scale 2 (~10.7M lines). On the 50-store warehouse the plain pipeline runs on its first 10
stores only (all 50 would take over an hour here), ours on those 10 (for the ratio) and on all 50 (the target).
--quick: the demo warehouse with 3 stores, one repeat, no 50-store warehouse.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import datetime as dt  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

from sqlalchemy import Engine, text  # noqa: E402

from benchmarks.pipeline_parts import (  # noqa: E402
    ProcessSampler,
    empty_notebook_overhead,
    plain_emails,
    plain_job,
)
from report_lib.config import Settings  # noqa: E402
from report_lib.params import ParameterFiles  # noqa: E402
from report_lib.run.backends import LocalBackend  # noqa: E402
from report_lib.run.execute import ExecutionOptions, JobResult, RetryPolicy, pin_threads  # noqa: E402
from report_lib.run.plan import Job, RunRequest, plan_jobs  # noqa: E402
from report_lib.warehouse.engine import create_warehouse_engine, ensure_schema  # noqa: E402
from report_lib.warehouse.loaders.daily import load_stores, stores_with_order_lines  # noqa: E402
from report_lib.warehouse.refresh import refresh_daily_metrics  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
END = dt.date(2025, 6, 29)  # the generated data's last day, a Sunday
AS_OF = END + dt.timedelta(days=1)  # "last-week" is then 2025-W26
WORKERS = 2
STAGES = ("refresh", "execute", "HTML", "PDF", "email")
Row = dict[str, object]
CPU_OF, PEAK_OF = "CPU s of ", "peak MB of "  # keys of a run's profile: by kind of process


def run(quick: bool = False) -> list[Row]:
    rows = empty_notebook_overhead(repeats=3 if quick else 7)
    if quick:
        return rows + compare("demo", _warehouse(10, 1.0), stores=3, repeats=1)
    rows += compare("demo", _warehouse(10, 1.0), stores=10, repeats=3)
    big = _warehouse(50, 2.0)
    rows += compare("50 stores, 10 of them", big, stores=10, repeats=1)
    rows += measure_ours("50 stores", big, stores=50)
    return rows


def compare(name: str, url: str, *, stores: int, repeats: int) -> list[Row]:
    """Each pipeline ``repeats`` times, in turns (plain first in even repeats); medians and the ratio per stage."""
    runs: dict[str, list[dict[str, float]]] = {"plain": [], "ours": []}
    for repeat in range(repeats):
        for pipeline in ("plain", "ours") if repeat % 2 == 0 else ("ours", "plain"):
            _progress(f"{name}: {pipeline}, repeat {repeat + 1} of {repeats}")
            runs[pipeline].append(run_pipeline(pipeline, url, stores=stores))
            _progress(f"{name}: {pipeline} took {runs[pipeline][-1]['end to end']:.0f} s")
    reports = runs["ours"][0]["reports"]
    rows = []
    for stage in (*STAGES, "end to end"):
        plain, ours = (statistics.median(r[stage] for r in runs[p]) for p in ("plain", "ours"))
        rows.append(_row(name, stage, plain, ours, reports=reports, repeats=repeats))
    plain_cpu, ours_cpu = (statistics.median(r["CPU s"] for r in runs[p]) for p in ("plain", "ours"))
    load = statistics.median(r["load"] for p in runs for r in runs[p])
    rows.append(
        {"warehouse": name, "stage": "CPU seconds, all processes", "plain": round(plain_cpu), "ours": round(ours_cpu),
         "ratio": f"{plain_cpu / ours_cpu:.1f}x",
         "note": f"ours {ours_cpu / reports:.2f} CPU s a report; 1-min load average during the runs {load:.1f}"}
    )  # fmt: skip
    plain_mb, ours_mb = (max(r["peak MB"] for r in runs[p]) for p in ("plain", "ours"))
    rows.append(
        {"warehouse": name, "stage": "peak memory per worker (MB)", "plain": plain_mb, "ours": ours_mb, "ratio": ""}
    )
    for pipeline in ("plain", "ours"):
        rows += _profile_rows(name, pipeline, runs[pipeline][-1])
    return rows


def measure_ours(name: str, url: str, *, stores: int) -> list[Row]:
    _progress(f"{name}: ours, all {stores} stores")
    result = run_pipeline("ours", url, stores=stores)
    rows = [_row(name, stage, None, result[stage], reports=result["reports"], repeats=1) for stage in STAGES]
    rows.append(_row(name, "end to end", None, result["end to end"], reports=result["reports"], repeats=1))
    rows.append(
        {"warehouse": name, "stage": "CPU seconds, all processes", "ours": round(result["CPU s"]),
         "note": f"{result['CPU s'] / result['reports']:.2f} CPU s a report; load average {result['load']:.1f}"}
    )  # fmt: skip
    rows.append({"warehouse": name, "stage": "peak memory per worker (MB)", "ours": result["peak MB"]})
    rows += _profile_rows(name, "ours", result)
    return rows


def run_pipeline(pipeline: str, url: str, *, stores: int) -> dict[str, float]:
    """One nightly run; seconds per stage, 'end to end', 'reports', 'peak MB', CPU and load, and the profile by kind
    of process (CPU_OF and PEAK_OF keys)."""
    engine = create_warehouse_engine(url)
    folder = Path(tempfile.mkdtemp(prefix=f"pipeline-{pipeline}-", dir=OUT))
    try:
        started, cpu_before, load_before = time.perf_counter(), time.process_time(), os.getloadavg()[0]
        result = {"refresh": _refresh(engine, full=pipeline == "plain")}
        jobs = _jobs(engine, folder / "reports", stores=stores)
        with ProcessSampler() as sampler:
            results = _execute(pipeline, jobs, url)
        failed = [f"{r.key}: {r.error}" for r in results if r.status != "ok"]
        if failed:
            raise RuntimeError(f"{pipeline}: {len(failed)} report(s) failed, first: {failed[0]}")
        for stage, key in (("execute", "execute"), ("HTML", "html"), ("PDF", "pdf")):
            result[stage] = sum(r.stages.get(key, 0.0) for r in results) / WORKERS
        result["email"] = _emails(pipeline, engine, jobs, results, folder)
        result["end to end"] = time.perf_counter() - started
        result["CPU s"] = time.process_time() - cpu_before - sampler.cpu_seconds + sum(sampler.cpu_by_kind.values())
        result["load"] = (load_before + os.getloadavg()[0]) / 2
        result["reports"] = len(results)
        result["peak MB"] = sampler.peak_mb
        result.update({f"{CPU_OF}{kind}": seconds for kind, seconds in sampler.cpu_by_kind.items()})
        result.update({f"{PEAK_OF}{kind}": mb for kind, mb in sampler.peak_mb_by_kind.items()})
        return result
    finally:
        engine.dispose()
        shutil.rmtree(folder, ignore_errors=True)


def _refresh(engine: Engine, *, full: bool) -> float:
    started = time.perf_counter()
    refresh_daily_metrics(engine, full=full)
    return time.perf_counter() - started


def _jobs(engine: Engine, output: Path, *, stores: int) -> list[Job]:
    codes = sorted(load_stores(engine)["code"])[:stores]
    request = RunRequest(stores=",".join(codes), notebooks="all", period="last-week", as_of=AS_OF)
    files = ParameterFiles.load(ROOT / "parameters")
    jobs = plan_jobs(
        request,
        stores=load_stores(engine),
        files=files,
        output_dir=output,
        with_order_lines=stores_with_order_lines(engine),
    )
    return [job for job in jobs if job.skip_reason is None]


def _execute(pipeline: str, jobs: list[Job], url: str) -> list[JobResult]:
    if pipeline == "ours":
        options = ExecutionOptions(
            database_url=url, batch="bench-ours", formats=("html", "pdf"), retry=RetryPolicy(retries=0), engine="warm"
        )
        return LocalBackend().execute(jobs, options, workers=WORKERS, on_result=lambda r: None)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=WORKERS, mp_context=context, initializer=pin_threads) as pool:
        return list(pool.map(plain_job, jobs, [url] * len(jobs)))


def _emails(pipeline: str, engine: Engine, jobs: list[Job], results: list[JobResult], folder: Path) -> float:
    """Portal page, one email per store, regional digests, written to an outbox; seconds."""
    from report_lib.run.publish import publish

    settings = Settings(
        database_url=str(engine.url),
        output_dir=folder / "reports",
        outbox_dir=folder / "outbox",
        parameters_dir=ROOT / "parameters",
    )
    files = ParameterFiles.load(ROOT / "parameters")
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM email_deliveries"))  # every repeat sends again (the ledger never resends)
    started = time.perf_counter()
    if pipeline == "ours":
        publish(jobs, results, settings=settings, files=files, engine=engine, send=True)
    else:
        plain_emails(jobs, results, settings=settings, files=files, engine=engine)
    seconds = time.perf_counter() - started
    sent = len(list((folder / "outbox").glob("*.eml")))
    if sent < len({job.store for job in jobs}):
        raise RuntimeError(f"{pipeline}: {sent} emails written for {len({job.store for job in jobs})} stores")
    return seconds


def _warehouse(stores: int, scale: float) -> str:
    """A SQLite warehouse generated once (seed 42, 730 days to END) and kept in benchmarks/out/."""
    path = OUT / f"pipeline-{stores}x730-scale{scale:g}.db"
    marker = path.with_suffix(".json")
    wanted = {"stores": stores, "days": 730, "seed": 42, "end": END.isoformat(), "scale": scale}
    url = f"sqlite:///{path}"
    if path.exists() and marker.exists() and json.loads(marker.read_text()) == wanted:
        return url
    from report_lib.warehouse.demo import generate_demo

    OUT.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    engine = create_warehouse_engine(url)
    ensure_schema(engine)
    _progress(f"generating {stores} stores x 730 days at scale {scale:g} into {path} (minutes at 10M lines)")
    generate_demo(engine, stores=stores, days=730, seed=42, end=END, scale=scale, force=True)
    refresh_daily_metrics(engine)
    engine.dispose()
    marker.write_text(json.dumps(wanted))
    return url


def _profile_rows(name: str, pipeline: str, result: dict[str, float]) -> list[Row]:
    """Where one run's CPU and its worker's peak memory went, by kind of process: the profile behind the figures."""
    reports = result["reports"]
    cpu = {key.removeprefix(CPU_OF): v / reports for key, v in result.items() if key.startswith(CPU_OF)}
    peak = {key.removeprefix(PEAK_OF): v for key, v in result.items() if key.startswith(PEAK_OF)}
    return [
        {"warehouse": name, "stage": f"{pipeline}: CPU s a report, by process", "note": _largest_first(cpu, "{:.2f}")},
        {"warehouse": name, "stage": f"{pipeline}: peak worker MB, by process", "note": _largest_first(peak, "{:.0f}")},
    ]  # fmt: skip


def _largest_first(values: dict[str, float], form: str) -> str:
    return ", ".join(f"{kind} {form.format(value)}" for kind, value in sorted(values.items(), key=lambda kv: -kv[1]))


def _row(name: str, stage: str, plain: float | None, ours: float, *, reports: float, repeats: int) -> Row:
    row: Row = {"warehouse": name, "stage": stage}
    if plain is not None:
        row["plain"] = round(plain, 1)
    row["ours"] = round(ours, 1)
    row["ratio"] = f"{plain / ours:.1f}x" if plain is not None and ours > 0 else ""
    if stage == "end to end":
        row["note"] = f"{int(reports)} reports, {ours / reports:.2f} s each (ours); median of {repeats}"
    return row


def _progress(message: str) -> None:
    print(f"[bench_pipeline {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    from benchmarks.run import markdown_table

    print(markdown_table(run(quick="--quick" in sys.argv[1:])), end="")
