"""What backup and restore runs share: how a run is claimed, beats, publishes its progress,
fails or is handed back for a retry, and how runs whose worker died are recovered."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from backups import engine
from backups.models import BackupRun, RestoreRun, RunStatus, RunTarget
from backups.services.repository_locks import RepositoryBusy
from backups.sources.process import SourceError, SourceUnreachable
from backups.storage import EndpointUnreachable, StorageError
from kernel import claims
from kernel.exceptions import ValidationFailed

logger = logging.getLogger(__name__)

# Errors worth another attempt after boto3's own retries gave up: the endpoint may come back.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    EndpointUnreachable,
    RepositoryBusy,
    SourceUnreachable,
)
PROGRESS_EVERY_SECONDS = 1.0
# Backups and restores wait pending, are held running; a message lost for five minutes is sent
# again by the recovery beat (kernel.claims: claim, heartbeat, recovery).
RUN_CLAIM = claims.ClaimRule(
    state_field="status",
    waiting=RunStatus.PENDING,
    held=RunStatus.RUNNING,
    waiting_since="created_at",
    lost_after=timedelta(minutes=5),
)
# After this many claims a run that keeps losing its worker is failed instead of retried.
MAX_ATTEMPTS = 5


class TransientFailure(Exception):
    """A run hit a transient storage error and should be retried by its task."""


def _enqueue_backup(run: BackupRun) -> None:
    from backups.tasks import backup_run_task

    backup_run_task.delay_on_commit(str(run.public_id))  # type: ignore[attr-defined]  # stubs lag


def _enqueue_restore(restore: RestoreRun) -> None:
    from backups.tasks import restore_run_task

    restore_run_task.delay_on_commit(str(restore.public_id))  # type: ignore[attr-defined]  # stubs lag


class _Progress:
    """Collects (done, total) from engine threads; only the calling thread writes it to the
    database, so every write uses the run's own connection (and, in tests, its transaction)."""

    def __init__(self, also: Callable[[int, int], None] | None) -> None:
        self.also = also
        self.lock = threading.Lock()
        self.latest: tuple[int, int] | None = None

    def __call__(self, done: int, total: int) -> None:
        if self.also is not None:
            self.also(done, total)
        with self.lock:
            self.latest = (done, total)

    def take(self) -> tuple[int, int] | None:
        with self.lock:
            latest, self.latest = self.latest, None
        return latest


_T = TypeVar("_T")


def _with_progress(
    work: Callable[[_Progress], _T],
    model: type[BackupRun] | type[RestoreRun],
    pk: int,
    also: Callable[[int, int], None] | None,
) -> _T:
    """Run `work` on a helper thread and publish its progress every second from this one."""
    progress = _Progress(also)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine") as pool:
        future = pool.submit(work, progress)
        while True:
            try:
                result = future.result(timeout=PROGRESS_EVERY_SECONDS)
            except FutureTimeout:
                fields: dict[str, Any] = {}
                latest = progress.take()
                if latest is not None:
                    fields.update(bytes_done=latest[0], bytes_total=latest[1])
                _beat(model, pk, fields)
                continue
            return result


def _beat(model: type[BackupRun] | type[RestoreRun], pk: int, fields: dict[str, Any]) -> None:
    """Write one heartbeat. A database connection lost mid-run (a restarted or failed-over
    server, a terminated backend) is closed here and re-opened by the next beat, so the work
    goes on instead of being abandoned at its end; beats that keep failing leave the heartbeat
    to go stale, and the recovery sweep hands the run to another attempt."""
    try:
        claims.heartbeat(model.objects.filter(pk=pk), **fields)
    except (OperationalError, InterfaceError):
        if connection.in_atomic_block:  # a caller's transaction is lost with it: not ours
            raise
        logger.warning("heartbeat of %s %s failed; reconnecting", model.__name__, pk, exc_info=True)
        connection.close_if_unusable_or_obsolete()


class RunInProgress(Exception):
    """Another live worker holds this run (its heartbeat is fresh); try again later."""


def _claim(model: type[BackupRun] | type[RestoreRun], public_id: str) -> Any:
    """Take a pending run, or a running one whose worker died (no heartbeat for STALE_AFTER).

    The conditional update wins once, so two deliveries of the same task never both work.
    Returns None when the run is finished (or unknown); raises RunInProgress when a live worker
    holds it.
    """
    now = timezone.now()
    if not claims.claim(
        model.objects.filter(public_id=public_id), RUN_CLAIM, now=now, started_at=now
    ):
        if model.objects.filter(public_id=public_id, status=RunStatus.RUNNING).exists():
            raise RunInProgress(f"run {public_id} is held by a live worker")
        return None
    return model.objects.select_related(
        "dataset", "dataset__organization", "dataset__client", "dataset__location"
    ).get(public_id=public_id)


def _clear_message(exc: BaseException) -> str:
    if isinstance(exc, StorageError | engine.EngineError | ValidationFailed | SourceError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _finish_failed(model: type[BackupRun] | type[RestoreRun], pk: int, error: str) -> None:
    model.objects.filter(pk=pk).update(
        status=RunStatus.FAILED, finished_at=timezone.now(), error=error[:4000]
    )
    if model is BackupRun:
        RunTarget.objects.filter(run_id=pk).update(active=False)
        # --- alerts: a backup that failed for good alerts per (dataset, target) ---
        from backups.services.alerts import backup_failed_raise

        backup_failed_raise(pk, error[:4000])


# What a run can meet that is the data's or the storage's fault, not a bug: the run records it.
RUN_ERRORS: tuple[type[Exception], ...] = (
    SourceError,
    StorageError,
    engine.EngineError,
    ValidationFailed,
    OSError,
)


def _failed(
    model: type[BackupRun] | type[RestoreRun], pk: int, exc: Exception, *, final_attempt: bool
) -> Any:
    """A transient error before the final attempt hands the run back (pending, no heartbeat, so
    the task's retry can claim it at once) and raises for the retry; any other error, or the
    last attempt's, fails the run with a message a person can act on."""
    if isinstance(exc, TRANSIENT_ERRORS) and not final_attempt:
        claims.release(
            model.objects.filter(pk=pk),
            RUN_CLAIM,
            state=RunStatus.PENDING,
            error=f"retrying: {exc}"[:4000],
        )
        raise TransientFailure(str(exc)) from exc
    _finish_failed(model, pk, _clear_message(exc))
    return model.objects.get(pk=pk)


def runs_recover(now: datetime | None = None) -> dict[str, int]:
    """Every minute: re-enqueue runs whose worker died (stale heartbeat) or whose message was
    lost (pending for over five minutes); fail those that lost their worker MAX_ATTEMPTS times.
    Nothing is lost when a broker cannot redeliver (filesystem) or redelivers late (Redis)."""
    now = now or timezone.now()
    counts = {"requeued": 0, "failed": 0}
    for model, enqueue in ((BackupRun, _enqueue_backup), (RestoreRun, _enqueue_restore)):
        for run in claims.stuck(model.objects.unscoped_for_system_task(), RUN_CLAIM, now=now):
            if run.attempts >= MAX_ATTEMPTS:
                _finish_failed(
                    model,
                    run.pk,
                    f"The worker running this stopped {run.attempts} times; "
                    "giving up. Check the worker logs, then start it again.",
                )
                counts["failed"] += 1
            else:
                with transaction.atomic():
                    enqueue(run)
                counts["requeued"] += 1
    return counts
