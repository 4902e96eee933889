"""The warm-kernel papermill engine: isolation between notebooks, recycling, and output identical in structure to
papermill's default engine. Real kernels throughout (this process holds the warm kernel, shut down at the end)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import papermill
import pytest
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from papermill.exceptions import PapermillExecutionError
from sqlalchemy import Engine

from report_lib.params import ParameterFiles
from report_lib.periods import parse_period
from report_lib.record import read_records
from report_lib.run import engines
from report_lib.run.backends import LocalBackend
from report_lib.run.engines import WORKER, RecyclePolicy, WarmKernelError, shutdown_worker_kernel
from report_lib.run.execute import ExecutionOptions, RetryPolicy, run_job
from report_lib.run.notebooks import NOTEBOOKS
from report_lib.run.plan import Job, RunRequest, plan_jobs
from report_lib.warehouse.loaders.daily import load_stores

LIGHT = ("pandas", "plotly.io")  # what the probes import: quicker warm-ups than the reports' WARM_IMPORTS

# Everything a notebook can change that the next one would notice; the probe records what it sees.
POLLUTE = """
import logging, os, sys, warnings, random
import numpy as np, pandas as pd, plotly.io as pio
leaked_global = 42
os.chdir('/')
os.environ['REPORT_TEST_LEAK'] = 'leaked'
os.environ.pop('REPORT_TEST_KEEP', None)
pio.templates.default = 'ggplot2'
pio.renderers.default = 'json'
pio.renderers['png'].width = 123
pd.set_option('display.max_rows', 3)
np.set_printoptions(precision=2)
warnings.simplefilter('ignore')
logging.basicConfig(level=logging.DEBUG)
logging.getLogger('report_test.created').addHandler(logging.StreamHandler())
logging.getLogger('report_test.created').setLevel(logging.DEBUG)
sys.path.insert(0, '/leaked/path')
get_ipython().display_formatter.formatters['text/plain'].for_type(int, lambda n, p, cycle: p.text('LEAKED'))
random.seed(1)
np.random.seed(1)
"""
OBSERVE = """
import json, logging, os, sys, warnings, random
import numpy as np, pandas as pd, plotly.io as pio
seen = {}
record = seen.__setitem__
record('globals', sorted(name for name in globals() if not name.startswith('_')))
record('cwd', os.getcwd())
record('leak_env', os.environ.get('REPORT_TEST_LEAK'))
record('keep_env', os.environ.get('REPORT_TEST_KEEP'))
record('template', pio.templates.default)
record('renderer', pio.renderers.default)
record('png_width', pio.renderers['png'].width)
record('max_rows', pd.get_option('display.max_rows'))
record('precision', np.get_printoptions()['precision'])
record('warnings_ignored', any(f[0] == 'ignore' and f[1] is None and f[2] is Warning for f in warnings.filters))
record('root_handlers', len(logging.getLogger().handlers))
created = logging.getLogger('report_test.created')
record('created_logger', (len(created.handlers), created.level))
record('leaked_path', '/leaked/path' in sys.path)
record('int_repr', get_ipython().display_formatter.format(7)[0]['text/plain'])
record('random_draw', random.random())
record('execution_count', get_ipython().execution_count)
record('pid', os.getpid())
print(json.dumps(seen))
"""
PID = "import os\nprint(os.getpid())"


def notebook(path: Path, *sources: str, parameters: str | None = None) -> Path:
    cells = [nbformat.v4.new_code_cell(source) for source in sources]
    if parameters is not None:
        cells.insert(0, nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def execute(source: Path, out: Path, *, engine: str = "warm", **options: Any) -> nbformat.NotebookNode:
    if engine == "warm":
        options.setdefault("preload", LIGHT)
    return papermill.execute_notebook(
        str(source), str(out), engine_name=engine, progress_bar=False, kernel_name="python3", **options
    )


def records(nb: nbformat.NotebookNode) -> dict[str, Any]:
    """What the probe printed last, as JSON (the probes print instead of importing report_lib.record)."""
    printed = [o["text"] for cell in nb.cells for o in cell.get("outputs", []) if o.get("name") == "stdout"]
    return dict(json.loads(printed[-1]))


def pid(nb: nbformat.NotebookNode) -> int:
    """The kernel's process id, printed by the probe's first output."""
    return int(next(o["text"] for cell in nb.cells for o in cell.get("outputs", []) if o.get("name") == "stdout"))


@pytest.fixture(scope="module", autouse=True)
def _stop_the_warm_kernel() -> Iterator[None]:
    shutdown_worker_kernel()
    yield
    shutdown_worker_kernel()


@pytest.fixture
def probes(tmp_path: Path) -> dict[str, Path]:
    return {
        "pollute": notebook(tmp_path / "pollute.ipynb", POLLUTE, OBSERVE),
        "observe": notebook(tmp_path / "observe.ipynb", OBSERVE),
        "pid": notebook(tmp_path / "pid.ipynb", PID),
        "fail": notebook(tmp_path / "fail.ipynb", PID, "raise ValueError('boom')"),
        "crash": notebook(tmp_path / "crash.ipynb", "import os\nos._exit(3)"),
    }


def test_a_notebook_leaves_nothing_behind_for_the_next(
    probes: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPORT_TEST_KEEP", "kept")
    fresh = records(execute(probes["observe"], tmp_path / "fresh.ipynb", engine="nbclient", cwd=tmp_path))
    polluted = records(execute(probes["pollute"], tmp_path / "polluted.ipynb", cwd=tmp_path))
    started = WORKER.started
    after = records(execute(probes["observe"], tmp_path / "after.ipynb", cwd=tmp_path))

    assert WORKER.started == started and after["pid"] == polluted["pid"]  # the same kernel, not a new one
    changed = {
        "cwd": "/",
        "leak_env": "leaked",
        "keep_env": None,
        "template": "ggplot2",
        "renderer": "json",
        "png_width": 123,
        "max_rows": 3,
        "precision": 2,
        "warnings_ignored": True,
        "leaked_path": True,
        "int_repr": "LEAKED",
    }
    assert {name: polluted[name] for name in changed} == changed  # the polluter did change all of it
    assert "leaked_global" in polluted["globals"]
    assert polluted["root_handlers"] > fresh["root_handlers"]
    assert polluted["created_logger"] == [1, 10] and fresh["created_logger"] == [0, 0]
    volatile = {"pid", "random_draw"}
    assert {k: v for k, v in after.items() if k not in volatile} == {
        k: v for k, v in fresh.items() if k not in volatile
    }
    assert after["cwd"] == str(tmp_path) and after["keep_env"] == "kept"  # and the execution count as fresh
    assert after["random_draw"] != polluted["random_draw"]  # reseeded, not left at seed 1


def test_the_parents_environment_and_working_directory_reach_the_kernel(
    probes: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first_dir, second_dir = tmp_path / "a", tmp_path / "b"
    first_dir.mkdir()
    second_dir.mkdir()
    monkeypatch.setenv("REPORT_TEST_KEEP", "first")
    first = records(execute(probes["observe"], tmp_path / "1.ipynb", cwd=first_dir))
    monkeypatch.setenv("REPORT_TEST_KEEP", "second")
    second = records(execute(probes["observe"], tmp_path / "2.ipynb", cwd=second_dir))
    monkeypatch.delenv("REPORT_TEST_KEEP")
    third = records(execute(probes["observe"], tmp_path / "3.ipynb", cwd=first_dir))
    assert [r["keep_env"] for r in (first, second, third)] == ["first", "second", None]
    assert [r["cwd"] for r in (first, second, third)] == [str(first_dir), str(second_dir), str(first_dir)]
    assert first["pid"] == second["pid"] == third["pid"]


def test_a_failed_notebook_is_reported_and_the_kernel_replaced(probes: dict[str, Path], tmp_path: Path) -> None:
    before = pid(execute(probes["pid"], tmp_path / "before.ipynb", preload=()))
    with pytest.raises(PapermillExecutionError, match="boom"):
        execute(probes["fail"], tmp_path / "fail.ipynb", preload=())
    failed = nbformat.read(tmp_path / "fail.ipynb", as_version=4)
    after = pid(execute(probes["pid"], tmp_path / "after.ipynb", preload=()))
    assert pid(failed) == before  # the failure happened in the warm kernel...
    assert after != before  # ...which was replaced before the next notebook


def test_a_notebook_that_breaks_the_reset_succeeds_and_the_kernel_is_replaced(
    probes: dict[str, Path], tmp_path: Path
) -> None:
    breaker = notebook(tmp_path / "breaker.ipynb", PID, "import sys\nsys.modules['report_lib.run.kernel_state'] = None")
    broken = pid(execute(breaker, tmp_path / "broken.ipynb", preload=()))  # no exception: the notebook is fine
    assert pid(execute(probes["pid"], tmp_path / "after.ipynb", preload=())) != broken


def test_a_kernel_that_dies_is_reported_and_the_next_notebook_runs(probes: dict[str, Path], tmp_path: Path) -> None:
    before = pid(execute(probes["pid"], tmp_path / "before.ipynb", preload=()))
    with pytest.raises(DeadKernelError):  # what papermill's default engine raises too
        execute(probes["crash"], tmp_path / "crash.ipynb", preload=())
    crashed = nbformat.read(tmp_path / "crash.ipynb", as_version=4)
    assert crashed.metadata.papermill.end_time is not None  # papermill still finalised and wrote the notebook
    assert pid(execute(probes["pid"], tmp_path / "after.ipynb", preload=())) != before


def test_a_cell_that_runs_too_long_is_stopped_and_the_kernel_replaced(probes: dict[str, Path], tmp_path: Path) -> None:
    slow = notebook(tmp_path / "slow.ipynb", "import time\ntime.sleep(60)")
    before = pid(execute(probes["pid"], tmp_path / "before.ipynb", preload=()))
    with pytest.raises(CellTimeoutError):
        execute(slow, tmp_path / "slow-out.ipynb", execution_timeout=1, preload=())
    assert pid(execute(probes["pid"], tmp_path / "after.ipynb", preload=())) != before


@pytest.mark.parametrize(
    ("policy", "expected_kernels"),
    [
        ({"max_notebooks": 2}, [0, 0, 1, 1]),  # replaced after every second notebook
        ({"max_notebooks": 40, "max_memory_mb": 1.0}, [0, 1, 2, 3]),  # every kernel is above 1 MB
        ({"max_notebooks": 40, "max_memory_mb": 10_000.0}, [0, 0, 0, 0]),
    ],
)
def test_the_kernel_is_recycled_by_count_and_memory(
    probes: dict[str, Path], tmp_path: Path, policy: dict[str, float], expected_kernels: list[int]
) -> None:
    shutdown_worker_kernel()
    pids = [pid(execute(probes["pid"], tmp_path / f"{i}.ipynb", preload=(), **policy)) for i in range(4)]
    order = list(dict.fromkeys(pids))
    assert [order.index(p) for p in pids] == expected_kernels


def test_a_kernel_inherited_through_fork_is_left_to_its_owner(probes: dict[str, Path], tmp_path: Path) -> None:
    first = pid(execute(probes["pid"], tmp_path / "1.ipynb", preload=()))
    inherited = WORKER.kernel
    assert inherited is not None
    inherited.owner = -1  # as if this process were a fork of the kernel's owner
    try:
        assert pid(execute(probes["pid"], tmp_path / "2.ipynb", preload=())) != first
        assert inherited.is_alive()  # not stopped: it belongs to the other process
    finally:
        inherited.shutdown(now=True)


def test_the_kernels_channels_are_private_unix_sockets_removed_at_shutdown(
    probes: dict[str, Path], tmp_path: Path
) -> None:
    pid(execute(probes["pid"], tmp_path / "1.ipynb", preload=()))
    kernel = WORKER.kernel
    assert kernel is not None and kernel.km.get_connection_info()["transport"] == "ipc"
    folder = Path(kernel.km.ip).parent
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700  # no other user can open them
    channels = sorted(folder.iterdir())
    assert [p.name for p in channels] == [f"kernel-{n}" for n in range(1, 6)] and all(p.is_socket() for p in channels)
    shutdown_worker_kernel()
    assert not folder.exists()


def _normalised(nb: nbformat.NotebookNode) -> dict[str, Any]:
    """The notebook without what differs from run to run: times, durations, cell ids, paths, kernel pids."""
    data = copy.deepcopy(json.loads(nbformat.writes(nb)))
    data["metadata"]["papermill"].update(start_time="T", end_time="T", duration=0, output_path="OUT")
    for cell in data["cells"]:
        cell["id"] = "ID"
        cell["metadata"].pop("execution", None)
        times = cell["metadata"].get("papermill", {})
        for key in ("start_time", "end_time", "duration"):
            if times.get(key) is not None:
                times[key] = "T"
    text = json.dumps(data, sort_keys=True)
    return json.loads(re.sub(r"ipykernel_\d+/\d+", "ipykernel_PID/N", text))


@pytest.mark.parametrize("name", ["ok", "fails"])
def test_output_has_the_default_engines_structure_metadata_and_error_banner(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = [
        "import sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)\ntotal = threshold * 2\ntotal",
        "from IPython.display import HTML, display\ndisplay(HTML('<b>bold</b>'))",
    ]
    if name == "fails":
        body.append("def f():\n    raise KeyError(store)\nf()")
    body.append("'after'")
    source = notebook(tmp_path / f"{name}.ipynb", *body, parameters="store = 'S00'\nthreshold = 1")
    outputs = {}
    for engine in ("nbclient", "warm", "warm"):  # the second warm run: a reused kernel, not a fresh one
        out = tmp_path / engine / f"{len(outputs)}.ipynb"
        out.parent.mkdir(exist_ok=True)
        try:
            execute(source, out, engine=engine, parameters={"store": "S42", "threshold": 21})
        except PapermillExecutionError:
            assert name == "fails"
        outputs[len(outputs)] = _normalised(nbformat.read(out, as_version=4))
    default, warm, reused = outputs.values()
    assert warm == default
    assert reused == default
    if name == "fails":
        assert default["metadata"]["papermill"]["exception"] is True
        assert sum("papermill-error-cell-tag" in c["metadata"].get("tags", []) for c in default["cells"]) == 2


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({engines.MAX_NOTEBOOKS_ENV: "many"}, "must be a whole number"),
        ({engines.MAX_NOTEBOOKS_ENV: "0"}, "max_notebooks >= 1"),
        ({engines.MAX_MEMORY_ENV: "-5"}, "max_memory_mb > 0"),
    ],
)
def test_bad_recycling_settings_are_refused(environ: dict[str, str], message: str) -> None:
    with pytest.raises(WarmKernelError, match=message):
        RecyclePolicy.resolve(max_notebooks=None, max_memory_mb=None, environ=environ)


def test_recycling_settings_come_from_arguments_then_environment_then_defaults() -> None:
    environ = {engines.MAX_NOTEBOOKS_ENV: "7", engines.MAX_MEMORY_ENV: "300"}
    assert RecyclePolicy.resolve(max_notebooks=3, max_memory_mb=None, environ=environ) == RecyclePolicy(3, 300.0)
    assert RecyclePolicy.resolve(max_notebooks=None, max_memory_mb=None, environ={}) == RecyclePolicy()


def test_the_engine_is_registered_with_papermill() -> None:
    from papermill.engines import papermill_engines

    assert papermill_engines.get_engine("warm") is engines.WarmKernelEngine
    assert os.environ.get("JPY_PARENT_PID") is None  # the kernel's own variables stay in the kernel


def test_every_report_records_the_same_values_as_with_the_default_engine(
    demo_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The eight report notebooks of one demo store, one after another in one warm kernel (each inherits what the
    previous left), against papermill's default engine (a new kernel each): every recorded value is equal."""
    monkeypatch.setenv("REPORT_DATABASE_URL", demo_engine.url.render_as_string())  # run_job sets it; restored after
    request = RunRequest(stores="S01", notebooks="all", period=parse_period("last-week", today=dt.date.today()).label)

    def jobs(folder: str) -> list[Job]:
        planned = plan_jobs(
            request, stores=load_stores(demo_engine), files=ParameterFiles(), output_dir=tmp_path / folder
        )
        return [job for job in planned if job.skip_reason is None]

    def options(engine: str) -> ExecutionOptions:
        return ExecutionOptions(
            database_url=demo_engine.url.render_as_string(),
            batch=f"engine-test-{engine}",
            formats=(),
            retry=RetryPolicy(retries=0),
            execution_timeout=300,
            engine=engine,
        )

    default = LocalBackend().execute(jobs("default"), options("nbclient"), workers=2, on_result=lambda r: None)
    shutdown_worker_kernel()
    started = WORKER.started
    warm = [run_job(job, options("warm")) for job in jobs("warm")]  # in this process: one warm kernel for all
    assert WORKER.started == started + 1

    assert sorted(r.notebook for r in warm) == sorted(NOTEBOOKS) and len(default) == len(NOTEBOOKS)
    assert [r.error for r in warm + default if r.status != "ok"] == []
    recorded = {
        engine: {r.notebook: read_records(nbformat.read(r.outputs["ipynb"], as_version=4)) for r in results}
        for engine, results in (("default", default), ("warm", warm))
    }
    for name in NOTEBOOKS:
        assert recorded["warm"][name] == recorded["default"][name], name
        assert len(recorded["warm"][name]) >= 4, name  # the header at least: store, period, KPIs, insights
