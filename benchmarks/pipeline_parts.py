"""Parts of bench_pipeline: the plain pipeline's worker job and emails, the empty-notebook overhead, a memory sampler.

Not a benchmark of its own (benchmarks/run.py runs bench_*.py only).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

from sqlalchemy import Engine

from report_lib.config import Settings
from report_lib.params import ParameterFiles
from report_lib.run.execute import JobResult
from report_lib.run.plan import Job

Row = dict[str, object]
# nbconvert started per report: a new Python process that loads nbconvert, builds the exporter and renders one page.
RENDER_ONE = (
    "import sys; from pathlib import Path; from report_lib.render.html import render_html; "
    "render_html(Path(sys.argv[1]), Path(sys.argv[2]), title=sys.argv[3])"
)


def plain_job(job: Job, database_url: str) -> JobResult:
    """One report the plain way: papermill's default engine, nbconvert in a new process, Chromium per PDF."""
    import papermill

    from report_lib.render.pdf import html_to_pdf

    os.environ["REPORT_DATABASE_URL"] = database_url
    job.output_dir.mkdir(parents=True, exist_ok=True)
    ipynb = job.output_dir / f"{job.notebook.name}.ipynb"
    html, pdf = ipynb.with_suffix(".html"), ipynb.with_suffix(".pdf")
    stages: dict[str, float] = {}
    started = time.perf_counter()
    papermill.execute_notebook(
        str(job.notebook.path),
        str(ipynb),
        parameters=job.papermill_parameters,
        progress_bar=False,
        execution_timeout=600,
        cwd=str(job.notebook.path.parent),
    )
    stages["execute"] = time.perf_counter() - started
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", RENDER_ONE, str(ipynb), str(html), job.notebook.title], check=True)
    stages["html"] = time.perf_counter() - started
    started = time.perf_counter()
    html_to_pdf(html, pdf)  # no browser given: Chromium --print-to-pdf started for this report
    stages["pdf"] = time.perf_counter() - started
    outputs = {"ipynb": str(ipynb), "html": str(html), "pdf": str(pdf)}
    return JobResult(job.key, job.store, job.notebook.name, "ok", 1, sum(stages.values()), outputs, stages=stages)


def plain_emails(
    jobs: list[Job], results: list[JobResult], *, settings: Settings, files: ParameterFiles, engine: Engine
) -> None:
    """The portal page, then each store's email with its chart images drawn by a new kaleido browser, then the
    digests (the same code as ours for the portal and digests: they draw no images)."""
    from report_lib.render.email import build_store_email, deliver
    from report_lib.render.images import figure_pngs, record_figures
    from report_lib.run.publish import send_digests, store_outcomes, write_portal

    write_portal(jobs, results)
    period = jobs[0].period.label
    outcomes = store_outcomes(jobs, results, engine=engine, files=files)
    for outcome in outcomes:
        if outcome.overview is None or not outcome.managers:
            continue
        outputs = outcome.overview.outputs
        message = build_store_email(
            outcome.records,
            recipients=outcome.managers,
            sender=files.defaults.sender,
            pdf_path=Path(outputs["pdf"]),
            html_link=outputs.get("html"),
            images=figure_pngs(record_figures(outcome.records)),  # no session: a browser for this email
            idempotency_key=f"store-report:{outcome.store}:{period}",
        )
        deliver(message, settings)
    send_digests(outcomes, period=period, settings=settings, files=files, engine=engine)


def empty_notebook_overhead(*, repeats: int) -> list[Row]:
    """papermill on a one-cell notebook: the default engine (a kernel each time) and the warm engine."""
    import nbformat
    import papermill

    from report_lib.run.engines import shutdown_worker_kernel

    with tempfile.TemporaryDirectory(prefix="empty-notebook-") as work:
        source, out = Path(work) / "empty.ipynb", Path(work) / "out.ipynb"
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("pass")])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, source)

        def once(engine: str | None) -> float:
            started = time.perf_counter()
            papermill.execute_notebook(str(source), str(out), engine_name=engine, progress_bar=False)
            return time.perf_counter() - started

        once(None)  # papermill's own first-call costs, for neither engine
        default, warm = [], []
        shutdown_worker_kernel()
        first = once("warm")
        for _ in range(repeats):
            default.append(once(None))
            warm.append(once("warm"))
        shutdown_worker_kernel()
    note = f"median of {repeats}, alternating"
    plain, ours = statistics.median(default), statistics.median(warm)
    return [
        {"warehouse": "-", "stage": "empty notebook", "plain": round(plain, 2), "ours": round(ours, 2),
         "ratio": f"{plain / ours:.1f}x", "note": note},
        {"warehouse": "-", "stage": "empty notebook, a worker's first", "plain": round(plain, 2),
         "ours": round(first, 2), "ratio": f"{plain / first:.1f}x", "note": "ours: kernel start + report imports"},
    ]  # fmt: skip


class ProcessSampler:
    """Peak PSS (MB) of any one child of this process with all its descendants, sampled every ``interval`` s; and
    the profile behind it: that peak split by kind of process, and the CPU seconds of each kind (the last reading of
    each process: up to ``interval`` s of a process that exits between readings is missed). Reading /proc rather than
    getrusage: a kernel or browser whose parent never waits for it is missing from RUSAGE_CHILDREN."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.peak_mb = 0.0
        self.peak_mb_by_kind: dict[str, float] = {}
        self.cpu_seconds = 0.0  # the sampler's own, for callers that measure everyone else's
        self._cpu_by_pid: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_until_stopped, name="process-sampler", daemon=True)

    def __enter__(self) -> ProcessSampler:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def cpu_by_kind(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for kind, seconds in self._cpu_by_pid.values():
            totals[kind] = totals.get(kind, 0.0) + seconds
        return totals

    def _sample_until_stopped(self) -> None:
        while not self._stop.wait(self.interval):
            started = time.thread_time()
            children = _children_by_parent()
            for worker in children.get(os.getpid(), []):
                tree = {pid: _process_kind(pid, worker) for pid in _descendants(worker, children)}
                pss = {pid: _pss_kb(pid) / 1024 for pid in tree}
                if sum(pss.values()) > self.peak_mb:
                    self.peak_mb = sum(pss.values())
                    self.peak_mb_by_kind = {}
                    for pid, kind in tree.items():
                        self.peak_mb_by_kind[kind] = self.peak_mb_by_kind.get(kind, 0.0) + pss[pid]
                for pid, kind in tree.items():
                    seconds = _cpu_seconds(pid)
                    if seconds is not None:
                        known = self._cpu_by_pid.get(pid, (kind,))[0]  # an exiting process has no command line
                        self._cpu_by_pid[pid] = (known if kind == "other" else kind, seconds)
            self.cpu_seconds += time.thread_time() - started


PROCESS_KINDS = (  # (what the command line contains, kind), first match wins
    ("ipykernel", "kernel"),
    ("--type=renderer", "Chromium renderer"),
    ("chromium", "Chromium, other processes"),
    ("playwright", "playwright driver (node)"),
    ("kaleido", "kaleido"),
    ("render_html", "nbconvert process"),
)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _process_kind(pid: int, root: int) -> str:
    """What a process is, by its command line; the root of a tree is a worker unless it is one of the kinds (the
    emails' kaleido browser is a direct child of the bench process too)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
    except OSError:
        command = ""
    return next((kind for needle, kind in PROCESS_KINDS if needle in command), "worker" if pid == root else "other")


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of one process so far, or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _children_by_parent() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state, past the command's parentheses
        children.setdefault(parent, []).append(int(name))
    return children


def _descendants(pid: int, children: dict[int, list[int]]) -> list[int]:
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get(current, []))
    return found


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0
