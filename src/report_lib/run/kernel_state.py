"""Inside a warm kernel: the state a fresh kernel has, saved once after the heavy imports and restored after every
notebook, so the next notebook sees what it would see in a kernel of its own.

The warm engine (``report_lib.run.engines``) calls these functions with silent execute requests, through
``__import__`` so no name lands in the user namespace. Restored: the user namespace and execution count (IPython's
``reset``), working directory, environment variables (and the time zone read from them), ``sys.path`` and the
standard streams and hooks, warnings filters and the "already shown" registries, logging configuration, plotly's
default renderer and template (and renderer objects' settings), pandas and numpy options, matplotlib's rcParams
and figures when matplotlib is loaded, IPython display formatters, event callbacks and input transformers; the
global random generators are reseeded from the OS, as in a new process. What cannot be undone (threads left
running, or anything the caller's checks flag) is reported as ``dirty`` and the engine replaces the kernel.

This module is imported by kernels: it must stay light (no papermill, no nbconvert).
"""

from __future__ import annotations

import copy
import gc
import importlib
import json
import logging
import os
import random
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

SYS_HOOKS = ("stdout", "stderr", "stdin", "displayhook", "excepthook")
# The kernel's own threads, started lazily (zmq's garbage collector starts with the first large message).
KERNEL_THREAD_MODULES = ("zmq.", "ipykernel.", "IPython.", "jupyter_client.")


@dataclass
class _Baseline:
    namespace: dict[str, Any]
    sys_path: list[str]
    sys_hooks: dict[str, Any]
    warning_filters: list[Any]
    loggers: dict[str, tuple[int, list[logging.Handler], bool, bool]]
    threads: set[int | None]
    plotly: dict[str, Any] | None
    pandas: dict[str, Any] | None
    numpy: dict[str, Any] | None
    matplotlib: dict[str, Any] | None
    ipython: dict[str, Any]


_BASELINE: _Baseline | None = None
_LAST_REPORT: dict[str, Any] = {}


def warm_up(modules: Sequence[str]) -> None:
    """Import ``modules`` (the heavy ones the notebooks use) and save the state every notebook starts from."""
    global _BASELINE
    namespace = dict(_shell().user_ns)  # before any import binds a name
    for name in modules:
        importlib.import_module(name)
    _BASELINE = _Baseline(
        namespace=namespace,
        sys_path=list(sys.path),
        sys_hooks={name: getattr(sys, name) for name in SYS_HOOKS},
        warning_filters=list(warnings.filters),
        loggers=_logging_state(),
        threads={thread.ident for thread in threading.enumerate()},
        plotly=_plotly_state(),
        pandas=_pandas_state(),
        numpy=_numpy_state(),
        matplotlib=_matplotlib_state(),
        ipython=_ipython_state(),
    )
    gc.collect()
    gc.freeze()  # the warm heap is never garbage: later collections (IPython's reset runs one) skip it


def environment() -> str:
    """This kernel's environment variables, as JSON (read once by the engine after the warm-up)."""
    return json.dumps(dict(os.environ))


def begin_notebook(cwd: str, environ: Mapping[str, str]) -> None:
    """Enter the notebook's working directory with the environment a kernel started now would have."""
    _set_environ(environ)
    os.chdir(cwd)


def end_notebook() -> None:
    """Clear what the notebook left and restore the saved state; ``report()`` then says whether that sufficed."""
    baseline = _require_baseline()
    shell = _shell()
    shell.reset(new_session=True)
    for name, value in baseline.namespace.items():
        shell.user_ns.setdefault(name, value)
    os.chdir(tempfile.gettempdir())  # the notebook's folder may be deleted before the next one runs
    sys.path[:] = baseline.sys_path
    for name, value in baseline.sys_hooks.items():
        setattr(sys, name, value)
    _restore_warnings(baseline.warning_filters)
    _restore_logging(baseline.loggers)
    _restore_plotly(baseline.plotly)
    _restore_pandas(baseline.pandas)
    _restore_numpy(baseline.numpy)
    _restore_matplotlib(baseline.matplotlib)
    _restore_ipython(shell, baseline.ipython)
    random.seed()
    gc.collect()
    _return_freed_memory()
    dirty = []
    extra = [
        thread.name
        for thread in threading.enumerate()
        if thread.ident not in baseline.threads and not type(thread).__module__.startswith(KERNEL_THREAD_MODULES)
    ]
    if extra:
        dirty.append(f"thread(s) left running: {', '.join(sorted(extra))}")
    if baseline.matplotlib is None and "matplotlib" in sys.modules:
        dirty.append("matplotlib was loaded by the notebook")
    _LAST_REPORT.clear()
    _LAST_REPORT.update({"rss_bytes": rss_bytes(), "dirty": dirty})


def report() -> str:
    """What the last ``end_notebook`` found, as JSON: resident memory in bytes and what could not be reset."""
    return json.dumps(_LAST_REPORT)


def rss_bytes() -> int:
    """This process's resident memory now (Linux /proc), else its peak (other platforms), in bytes."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)


def _return_freed_memory() -> None:
    """Give freed heap pages back to the OS (glibc keeps them otherwise), so the resident size the engine checks
    against its memory bound is what the kernel holds, not its high-water mark."""
    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _shell() -> Any:
    from IPython import get_ipython

    shell = get_ipython()  # type: ignore[no-untyped-call]
    if shell is None:
        raise RuntimeError("report_lib.run.kernel_state runs inside an IPython kernel only.")
    return shell


def _require_baseline() -> _Baseline:
    if _BASELINE is None:
        raise RuntimeError("The warm kernel was not warmed up: call warm_up(modules) first.")
    return _BASELINE


def _set_environ(environ: Mapping[str, str]) -> None:
    for name in [name for name in os.environ if name not in environ]:
        del os.environ[name]
    for name, value in environ.items():
        if os.environ.get(name) != value:
            os.environ[name] = value
    if hasattr(time, "tzset"):
        time.tzset()  # TZ is read once per change


def _restore_warnings(filters: list[Any]) -> None:
    warnings.filters[:] = filters  # type: ignore[index]  # a list at run time
    mutated = getattr(warnings, "_filters_mutated", None) or getattr(warnings, "_filters_mutated_lock_held", None)
    if mutated is not None:
        mutated()  # empties every module's "already shown" registry, so warnings show again as in a new kernel
    warnings.onceregistry.clear()  # type: ignore[attr-defined]


def _logging_state() -> dict[str, tuple[int, list[logging.Handler], bool, bool]]:
    loggers: dict[str, Any] = {"": logging.getLogger()}
    loggers.update({n: lg for n, lg in logging.Logger.manager.loggerDict.items() if isinstance(lg, logging.Logger)})
    return {name: (lg.level, list(lg.handlers), lg.propagate, lg.disabled) for name, lg in loggers.items()}


def _restore_logging(saved: Mapping[str, tuple[int, list[logging.Handler], bool, bool]]) -> None:
    """Loggers as saved; a logger created since keeps only its NullHandlers (what a library adds when imported)."""
    for name, (_, live_handlers, _, _) in _logging_state().items():
        quiet = [handler for handler in live_handlers if isinstance(handler, logging.NullHandler)]
        level, handlers, propagate, disabled = saved.get(name, (logging.NOTSET, quiet, True, False))
        logger = logging.getLogger(name or None)
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.propagate, logger.disabled = propagate, disabled
    logging.disable(logging.NOTSET)


def _plotly_state() -> dict[str, Any] | None:
    if "plotly.io" not in sys.modules:
        return None
    import plotly.io as pio

    renderers = dict(getattr(pio.renderers, "_renderers", {}))
    return {
        "renderer": pio.renderers.default,
        "renderers": renderers,
        "settings": {name: _copied(vars(renderer)) for name, renderer in renderers.items()},
        "template": pio.templates.default,
        "templates": dict(getattr(pio.templates, "_templates", {})),
    }


def _copied(settings: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return copy.deepcopy(dict(settings))
    except Exception:  # an attribute that cannot be copied: keep the same objects
        return dict(settings)


def _restore_plotly(saved: dict[str, Any] | None) -> None:
    if saved is None:
        return
    import plotly.io as pio

    for registry, key in ((pio.renderers, "_renderers"), (pio.templates, "_templates")):
        live = getattr(registry, key, None)
        if isinstance(live, dict):
            live.clear()
            live.update(saved[key.strip("_")])
    for name, settings in saved["settings"].items():
        vars(saved["renderers"][name]).clear()
        vars(saved["renderers"][name]).update(_copied(settings))
    pio.templates.default = saved["template"]
    pio.renderers.default = saved["renderer"]  # also queues plotly.js for the next chart, as in a new kernel


def _pandas_state() -> dict[str, Any] | None:
    if "pandas" not in sys.modules:
        return None
    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated options warn when read
        return {key: pd.get_option(key) for key in _pandas_option_names()}


def _restore_pandas(saved: dict[str, Any] | None) -> None:
    """Set back only the options that changed (resetting them all would validate plotting.backend=matplotlib)."""
    if saved is None:
        return
    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for key, value in saved.items():
            if pd.get_option(key) is not value and pd.get_option(key) != value:
                pd.set_option(key, value)


def _pandas_option_names() -> list[str]:
    from pandas._config import config  # no public list of the registered options

    return list(getattr(config, "_registered_options", {}))


def _numpy_state() -> dict[str, Any] | None:
    if "numpy" not in sys.modules:
        return None
    import numpy as np

    return {"print": np.get_printoptions(), "err": np.geterr()}


def _restore_numpy(saved: dict[str, Any] | None) -> None:
    if "numpy" not in sys.modules:
        return
    import numpy as np

    if saved is not None:
        np.set_printoptions(**saved["print"])
        np.seterr(**saved["err"])
    np.random.seed()  # noqa: NPY002  # the legacy global generator, reseeded from the OS as in a new process


def _matplotlib_state() -> dict[str, Any] | None:
    if "matplotlib" not in sys.modules:
        return None
    import matplotlib

    return dict(matplotlib.rcParams)


def _restore_matplotlib(saved: dict[str, Any] | None) -> None:
    if saved is None or "matplotlib" not in sys.modules:
        return
    import matplotlib

    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        matplotlib.rcParams.update(saved)


def _ipython_state() -> dict[str, Any]:
    shell = _shell()
    formatters = shell.display_formatter.formatters
    return {
        "printers": {
            mime: (dict(f.type_printers), dict(f.deferred_printers), getattr(f, "enabled", True))
            for mime, f in formatters.items()
        },
        "callbacks": {event: list(callbacks) for event, callbacks in shell.events.callbacks.items()},
        "ast_transformers": list(shell.ast_transformers),
        "input_transformers": list(shell.input_transformers_post),
    }


def _restore_ipython(shell: Any, saved: dict[str, Any]) -> None:
    formatters = shell.display_formatter.formatters
    for mime, (type_printers, deferred, enabled) in saved["printers"].items():
        if mime in formatters:
            formatters[mime].type_printers = dict(type_printers)
            formatters[mime].deferred_printers = dict(deferred)
            formatters[mime].enabled = enabled
    for event, callbacks in saved["callbacks"].items():
        shell.events.callbacks[event][:] = callbacks
    shell.ast_transformers[:] = saved["ast_transformers"]
    shell.input_transformers_post[:] = saved["input_transformers"]
