"""The run ledger: one row per attempt of (store, notebook, period), written by whoever runs the attempt.

Parameters recorded are the notebook's (plain values, never secrets); errors are the notebook's own exception text.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Engine, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from report_lib.warehouse.schema import email_deliveries, report_runs


@dataclass(frozen=True)
class Attempt:
    run_id: int
    started_at: dt.datetime


def start_attempt(
    engine: Engine, *, batch: str, store: str, notebook: str, period: str, parameters: dict[str, Any], attempt: int
) -> Attempt:
    started = dt.datetime.now()
    with engine.begin() as conn:
        run_id = conn.execute(
            insert(report_runs)
            .values(
                batch=batch,
                store_code=store,
                notebook=notebook,
                period=period,
                parameters=json.loads(json.dumps(parameters, default=str)),
                attempt=attempt,
                status="running",
                started_at=started,
                worker=socket.gethostname(),
            )
            .returning(report_runs.c.run_id)
        ).scalar_one()
    return Attempt(run_id, started)


def finish_attempt(
    engine: Engine, attempt: Attempt, *, status: str, error: str | None = None, outputs: dict[str, str] | None = None
) -> None:
    finished = dt.datetime.now()
    with engine.begin() as conn:
        conn.execute(
            update(report_runs)
            .where(report_runs.c.run_id == attempt.run_id)
            .values(
                status=status,
                finished_at=finished,
                seconds=(finished - attempt.started_at).total_seconds(),
                error=error,
                outputs=outputs or {},
            )
        )


def fail_running(engine: Engine, *, batch: str, store: str, notebook: str, period: str, error: str) -> int:
    """Mark the job's attempts still 'running' in ``batch`` as failed with ``error``; returns how many.

    For attempts whose process is gone (a killed worker, a task stopped by its time limit), which could not
    finish their own row.
    """
    job = and_(
        report_runs.c.batch == batch,
        report_runs.c.store_code == store,
        report_runs.c.notebook == notebook,
        report_runs.c.period == period,
        report_runs.c.status == "running",
    )
    with engine.begin() as conn:
        closed = conn.execute(
            update(report_runs).where(job).values(status="failed", finished_at=dt.datetime.now(), error=error)
        )
    return int(closed.rowcount)


def count_attempts(engine: Engine, *, batch: str, store: str, notebook: str, period: str) -> int:
    """How many attempts of the job ``batch`` has recorded."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).where(
                    report_runs.c.batch == batch,
                    report_runs.c.store_code == store,
                    report_runs.c.notebook == notebook,
                    report_runs.c.period == period,
                )
            ).scalar_one()
        )


def fail_running_batch(engine: Engine, *, batch: str, error: str) -> int:
    """Close every attempt of ``batch`` left 'running' by processes that died; returns how many."""
    now = dt.datetime.now()
    with engine.begin() as conn:
        closed = conn.execute(
            update(report_runs)
            .where(report_runs.c.batch == batch, report_runs.c.status == "running")
            .values(status="failed", finished_at=now, error=error)
        )
    return int(closed.rowcount)


def recent_runs(engine: Engine, *, limit: int = 50, failed_only: bool = False) -> pd.DataFrame:
    query = select(report_runs).order_by(report_runs.c.run_id.desc()).limit(limit)
    if failed_only:
        query = query.where(report_runs.c.status == "failed")
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return pd.DataFrame([dict(r) for r in rows], columns=[c.name for c in report_runs.c])


def run_metrics(engine: Engine) -> dict[str, Any]:
    """Counts by status, mean durations by notebook, and the last success per store."""
    with engine.connect() as conn:
        by_status: dict[str, int] = dict(
            conn.execute(select(report_runs.c.status, func.count()).group_by(report_runs.c.status)).all()
        )
        durations = conn.execute(
            select(report_runs.c.notebook, func.avg(report_runs.c.seconds), func.count())
            .where(report_runs.c.status == "ok")
            .group_by(report_runs.c.notebook)
        ).all()
        last_success = conn.execute(
            select(report_runs.c.store_code, func.max(report_runs.c.finished_at))
            .where(report_runs.c.status == "ok")
            .group_by(report_runs.c.store_code)
        ).all()
    return {"by_status": by_status, "durations": durations, "last_success": last_success}


# Email idempotency: one row per message key; a key marked sent/written/unconfirmed is never sent again, a
# 'partial' one only to the recipients the server refused.


def delivery_status(engine: Engine, key: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(
            select(email_deliveries.c.status).where(email_deliveries.c.idempotency_key == key)
        ).scalar_one_or_none()


def delivery_recipients(engine: Engine, key: str) -> tuple[str, list[str]] | None:
    """(status, recipients) of ``key``; for a 'partial' delivery the recipients still owed the message."""
    with engine.connect() as conn:
        row = conn.execute(
            select(email_deliveries.c.status, email_deliveries.c.recipients).where(
                email_deliveries.c.idempotency_key == key
            )
        ).one_or_none()
    return None if row is None else (str(row.status), [str(address) for address in row.recipients or []])


def claim_delivery(
    engine: Engine, *, key: str, kind: str, recipients: list[str], unless: Collection[str]
) -> str | None:
    """Atomically mark ``key`` 'sending'; None when this caller has the claim, else the status that holds it.

    A conditional UPDATE (status not in ``unless``), or for a new key an INSERT that loses to a concurrent one on
    the primary key: of two publishers at once, exactly one claims (SQLite and PostgreSQL alike).
    """
    values = {
        "kind": kind,
        "recipients": recipients,
        "status": "sending",
        "message_id": None,
        "last_error": None,
        "updated_at": dt.datetime.now(),
    }
    with engine.begin() as conn:
        claimed = conn.execute(
            update(email_deliveries)
            .where(email_deliveries.c.idempotency_key == key, email_deliveries.c.status.not_in(list(unless)))
            .values(attempts=email_deliveries.c.attempts + 1, **values)
        )
        if claimed.rowcount == 1:
            return None
    try:
        with engine.begin() as conn:
            conn.execute(insert(email_deliveries).values(idempotency_key=key, attempts=1, **values))
        return None
    except IntegrityError:  # the key exists: held by a final status, or claimed by another publisher just now
        return delivery_status(engine, key) or "sending"


def record_delivery(
    engine: Engine,
    *,
    key: str,
    kind: str,
    recipients: list[str],
    status: str,
    message_id: str | None = None,
    error: str | None = None,
) -> None:
    now = dt.datetime.now()
    with engine.begin() as conn:
        existing = conn.execute(
            select(email_deliveries.c.attempts).where(email_deliveries.c.idempotency_key == key)
        ).scalar_one_or_none()
        values = {
            "kind": kind,
            "recipients": recipients,
            "status": status,
            "message_id": message_id,
            "last_error": error,
            "updated_at": now,
        }
        if existing is None:
            conn.execute(insert(email_deliveries).values(idempotency_key=key, attempts=1, **values))
        else:
            conn.execute(
                update(email_deliveries)
                .where(email_deliveries.c.idempotency_key == key)
                .values(attempts=existing + 1, **values)
            )
