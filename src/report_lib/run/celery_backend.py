"""The ``celery`` execution backend: one task per (store, notebook, period) on Celery workers, waited for here.

``runner.py run --backend celery`` plans as usual, submits the jobs, reports each result as it arrives (the same
progress bar and summary as the local backend) and then publishes in this process: the portal page and, with
--send, the emails and regional digests, after every store's task has finished, failures included. Runs fired by
Celery beat have no waiting process; there a chord's callback publishes on a worker (see ``tasks.scheduled_run``).
Either way every email is claimed in the ledger before it is sent, so two publishers never send one twice.

Waiting survives the broker: while Redis is unreachable the wait goes on (up to REPORT_CELERY_BROKER_WAIT seconds,
then the unfinished reports fail with that reason); when Redis comes back as a new process (a restart without
persistence loses queued tasks and results) the unfinished reports are submitted again — tasks are idempotent.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

from celery import Celery, states
from kombu.exceptions import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from report_lib.config import Settings, load_settings
from report_lib.errors import ConfigError
from report_lib.run.backends import OnResult, register
from report_lib.run.celery_app import RUN_REPORT, CeleryTuning, close_app, create_app, require_workers
from report_lib.run.execute import ExecutionOptions, JobResult
from report_lib.run.plan import Job
from report_lib.run.tasks import decode_result, encode_job, encode_options, failed_result

log = logging.getLogger(__name__)

BROKER_ERRORS = (RedisConnectionError, RedisTimeoutError, OperationalError, ConnectionError, OSError)


class CeleryBackend:
    """Jobs as Celery tasks on whatever workers consume the queue; ``workers`` is theirs to decide, not ours."""

    def __init__(
        self, settings: Settings | None = None, tuning: CeleryTuning | None = None, *, poll_interval: float = 0.1
    ) -> None:
        self.settings = settings
        self.tuning = tuning
        self.poll_interval = poll_interval

    def execute(
        self, jobs: Sequence[Job], options: ExecutionOptions, *, workers: int, on_result: OnResult
    ) -> list[JobResult]:
        if not jobs:
            return []
        tuning = self.tuning or CeleryTuning.from_env()
        app = create_app(self.settings or load_settings(), tuning)
        try:
            require_workers(app, tuning.queue, first=True)
            submission = _Submission(app, tuning, jobs, options, on_result, poll_interval=self.poll_interval)
            return submission.wait()
        finally:
            close_app(app)


class _Submission:
    """The tasks of one batch: submitted, polled (one MGET per round), resubmitted after a broker restart."""

    def __init__(
        self,
        app: Celery,
        tuning: CeleryTuning,
        jobs: Sequence[Job],
        options: ExecutionOptions,
        on_result: OnResult,
        *,
        poll_interval: float,
    ) -> None:
        self.app = app
        self.tuning = tuning
        self.options = encode_options(options)
        self.on_result = on_result
        self.poll_interval = poll_interval
        self.pending: dict[str, Job] = {uuid.uuid4().hex: job for job in jobs}
        self.results: list[JobResult] = []
        self.last_progress = time.monotonic()

    def wait(self) -> list[JobResult]:
        client = self.app.backend.client
        server: str | None = None
        submit = True
        down_since: float | None = None
        self.last_progress = time.monotonic()
        while self.pending:
            try:
                current = _server_id(client)
                if server is not None and current != server:
                    log.warning("Redis restarted: %d unfinished report(s) submitted again", len(self.pending))
                    submit = True
                server = current
                if submit:
                    self._submit(self.pending)
                    submit = False
                self._collect(client)
                submit = self._stalled()
            except BROKER_ERRORS as exc:
                down_since = down_since or time.monotonic()
                waited = time.monotonic() - down_since
                if waited > self.tuning.broker_wait:
                    self._fail_pending(f"the broker was unreachable for {waited:.0f} s ({exc})")
                    break
                log.warning("broker unreachable for %.0f s, waiting: %s", waited, exc)
                time.sleep(1.0)
                continue
            down_since = None
            time.sleep(self.poll_interval)
        return self.results

    def _submit(self, tasks: dict[str, Job]) -> None:
        """Send ``tasks`` (again: same ids, tasks are idempotent), declaring the queue first: a Redis that lost
        everything in a restart has lost the queue's binding too, and a message without one is dropped."""
        with self.app.connection_for_write() as connection:
            self.app.amqp.queues[self.tuning.queue].bind(connection.default_channel).declare()
        for task_id, job in tasks.items():
            self.app.send_task(RUN_REPORT, args=(encode_job(job), self.options), task_id=task_id)

    def _collect(self, client: Any) -> None:
        """Report every task finished since the last round."""
        ids = list(self.pending)
        backend = self.app.backend
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for task_id, raw in zip(chunk, client.mget([backend.get_key_for_task(t) for t in chunk]), strict=True):
                if raw is None:
                    continue
                meta = backend.decode_result(raw)
                if meta["status"] in states.READY_STATES:
                    self._finish(task_id, meta)

    def _finish(self, task_id: str, meta: dict[str, Any]) -> None:
        job = self.pending.pop(task_id)
        if meta["status"] == states.SUCCESS:
            result = decode_result(meta["result"])
        else:
            exc = meta["result"]
            result = failed_result(job, f"{type(exc).__name__}: {exc} (Celery task {task_id})")
        self.results.append(result)
        self.last_progress = time.monotonic()
        self.on_result(result)

    def _stalled(self) -> bool:
        """True when nothing finished for longer than any task may run, yet workers answer: the unfinished tasks
        were lost (a broker that dropped them), so they are to be submitted again. With no worker left they fail."""
        waited = time.monotonic() - self.last_progress
        if not self.pending or waited < self.tuning.hard_time_limit + 60:
            return False
        self.last_progress = time.monotonic()
        try:
            require_workers(self.app, self.tuning.queue)
        except ConfigError as exc:
            self._fail_pending(f"no result for {waited:.0f} s and no worker left: {exc}")
            return False
        log.warning("no result for %.0f s: %d unfinished report(s) submitted again", waited, len(self.pending))
        return True

    def _fail_pending(self, reason: str) -> None:
        for task_id in list(self.pending):
            job = self.pending.pop(task_id)
            error = (
                f"BrokerError: not finished, {reason}. The ledger holds what the workers finished; run this report "
                "again once `runner.py health` passes."
            )
            result = failed_result(job, error)
            self.results.append(result)
            self.on_result(result)


def _server_id(client: Any) -> str:
    """The Redis server process's run id: it changes when Redis restarts."""
    return str(client.info("server")["run_id"])


register("celery", CeleryBackend())
