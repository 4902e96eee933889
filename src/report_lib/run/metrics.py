"""Run metrics in the Prometheus text exposition format (for a node-exporter textfile collector or a scrape)."""

from __future__ import annotations

from typing import Any


def prometheus_text(metrics: dict[str, Any]) -> str:
    lines = [
        "# HELP store_reports_runs_total Report attempts recorded in the ledger, by status.",
        "# TYPE store_reports_runs_total counter",
    ]
    for status, count in sorted(metrics["by_status"].items()):
        lines.append(f'store_reports_runs_total{{status="{_escape(status)}"}} {count}')
    lines += [
        "# HELP store_reports_duration_seconds_mean Mean seconds of successful attempts, by notebook.",
        "# TYPE store_reports_duration_seconds_mean gauge",
    ]
    for notebook, mean, _count in metrics["durations"]:
        lines.append(f'store_reports_duration_seconds_mean{{notebook="{_escape(notebook)}"}} {float(mean):.3f}')
    lines += [
        "# HELP store_reports_last_success_timestamp_seconds Unix time of each store's last successful report.",
        "# TYPE store_reports_last_success_timestamp_seconds gauge",
    ]
    for store, finished in metrics["last_success"]:
        stamp = finished.timestamp() if hasattr(finished, "timestamp") else float("nan")
        lines.append(f'store_reports_last_success_timestamp_seconds{{store="{_escape(store)}"}} {stamp:.0f}')
    return "\n".join(lines) + "\n"


def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
