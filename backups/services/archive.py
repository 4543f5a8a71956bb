"""Archive retrieval before a read: restores, drills, verifies and downloads of file content a
policy wrote to an archive class (GLACIER, DEEP_ARCHIVE) ask S3 for readable copies first
(RestoreObject), wait for them with progress, and only then read.

Only S3 stores have classes, and only file content can be cold (`engine.cold_objects`): a
repository whose listing shows no archived object costs two listings and nothing more. The wait
reports every few seconds (a run writes it as its heartbeat and status, so recovery never takes
a waiting run for dead) and checks S3 every `AGENCYOPS_ARCHIVE_POLL_SECONDS`; past
`AGENCYOPS_ARCHIVE_MAX_WAIT_HOURS` it fails, naming how many objects are still archived.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import cast

from django.conf import settings

from backups import engine
from backups.storage import (
    ArchiveRetrievalPending,
    ArchiveState,
    ObjectStore,
    S3ObjectStore,
)
from backups.storage.s3.archive import RetrievalTier

logger = logging.getLogger(__name__)

ArchiveProgress = Callable[[str], None]

# Reports between two checks of S3: well inside the runs' stale-heartbeat limit.
BEAT_SECONDS = 5.0
_HEAD_THREADS = 8
# Time as the wait sees it; tests control it instead of sleeping (STYLE.md §5).
_clock: Callable[[], float] = time.monotonic
_sleep: Callable[[float], None] = time.sleep


def retrieval_message(ready: int, total: int) -> str:
    return f"waiting for archive retrieval, {ready} of {total} objects"


def archive_state_read(store: S3ObjectStore, key: str) -> ArchiveState | None:
    """One object's class and retrieval state (one HEAD)."""
    return store.archive_state(key)


def _states(store: S3ObjectStore, keys: Sequence[str]) -> dict[str, ArchiveState | None]:
    if not keys:
        return {}
    with ThreadPoolExecutor(min(_HEAD_THREADS, len(keys)), thread_name_prefix="archive") as pool:
        return dict(zip(keys, pool.map(lambda k: archive_state_read(store, k), keys), strict=True))


def _still_archived(state: ArchiveState | None) -> bool:
    # An object gone meanwhile is not waited for: the read reports it missing.
    return state is not None and not state.readable


def _tier_for(state: ArchiveState | None, tier: RetrievalTier) -> RetrievalTier:
    # DEEP_ARCHIVE has no Expedited tier (S3 refuses the request): Standard is the fastest.
    if tier == "Expedited" and state is not None and state.storage_class == "DEEP_ARCHIVE":
        return "Standard"
    return tier


def _request(
    store: S3ObjectStore,
    states: dict[str, ArchiveState | None],
    keys: Sequence[str],
    *,
    days: int,
    tier: RetrievalTier,
) -> None:
    if not keys:
        return

    def ask(key: str) -> None:
        store.archive_restore(key, days=days, tier=_tier_for(states[key], tier))

    with ThreadPoolExecutor(min(_HEAD_THREADS, len(keys)), thread_name_prefix="archive") as pool:
        list(pool.map(ask, keys))
    logger.info("archive retrieval of %d objects requested at tier %s", len(keys), tier)


def _pause(seconds: float, report: ArchiveProgress, message: str) -> None:
    """Sleep `seconds`, reporting `message` every BEAT_SECONDS."""
    end = _clock() + seconds
    while (left := end - _clock()) > 0:
        _sleep(min(BEAT_SECONDS, left))
        report(message)


def archive_retrieve(
    store: S3ObjectStore,
    keys: Sequence[str],
    *,
    tier: RetrievalTier | None = None,
    progress: ArchiveProgress | None = None,
    days: int | None = None,
    poll_seconds: float | None = None,
    max_wait_seconds: float | None = None,
) -> float:
    """Make every archived object among `keys` readable; returns the seconds it took (0.0 when
    none is archived or all are retrieved already). Objects neither readable nor being
    retrieved are asked for (RestoreObject at `tier`, kept `days`), then S3 is checked every
    `poll_seconds` until all are readable;
    `progress` hears "waiting for archive retrieval, N of M objects" at every step. Past
    `max_wait_seconds` (0: check once after asking) ArchiveRetrievalPending says how many are
    still archived. Unset arguments come from the AGENCYOPS_ARCHIVE_* settings."""
    # Checked to be one of the three when settings load.
    tier = tier or cast(RetrievalTier, settings.AGENCYOPS_ARCHIVE_RETRIEVAL_TIER)
    days = days or settings.AGENCYOPS_ARCHIVE_RETRIEVAL_DAYS
    poll = poll_seconds if poll_seconds is not None else settings.AGENCYOPS_ARCHIVE_POLL_SECONDS
    if max_wait_seconds is None:
        max_wait_seconds = settings.AGENCYOPS_ARCHIVE_MAX_WAIT_HOURS * 3600.0
    report = progress or (lambda message: logger.info("%s", message))
    start = _clock()
    states = _states(store, list(keys))
    total = sum(1 for state in states.values() if state is not None and state.archived)
    if not total:
        return 0.0
    pending = [key for key, state in states.items() if _still_archived(state)]
    if not pending:
        # Retrieved earlier (a copy lasts `days`): nothing was waited for.
        report(retrieval_message(total, total))
        return 0.0
    while True:
        asked = [key for key in pending if (state := states[key]) and state.restore == "none"]
        if asked:
            _request(store, states, asked, days=days, tier=tier)
            # Asked just now: a fast tier (or a test server) may already be done.
            states.update(_states(store, asked))
            pending = [key for key in pending if _still_archived(states[key])]
        report(retrieval_message(total - len(pending), total))
        if not pending:
            return _clock() - start
        waited = _clock() - start
        if waited >= max_wait_seconds:
            hint = (
                f"waited the most allowed (AGENCYOPS_ARCHIVE_MAX_WAIT_HOURS: {_words(waited)})"
                if max_wait_seconds
                else "their retrieval is requested: try again once it is done"
            )
            raise ArchiveRetrievalPending(
                f"{retrieval_message(total - len(pending), total)}: {len(pending)} of {total} "
                f"objects are still archived in {store.describe()} (retrieval tier {tier}); " + hint
            )
        message = retrieval_message(total - len(pending), total)
        _pause(min(poll, max_wait_seconds - waited), report, message)
        # A copy that expired, or a request S3 lost, shows as "none" again: it is asked again.
        states.update(_states(store, pending))
        pending = [key for key in pending if _still_archived(states[key])]


def _words(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def archive_retrieve_for_read(
    *,
    store: ObjectStore,
    base: str,
    data_key: bytes,
    manifest_ids: Sequence[str],
    path_prefix: str = "",
    progress: ArchiveProgress | None = None,
    max_wait_seconds: float | None = None,
) -> float:
    """Retrieve what reading these snapshots' files under `path_prefix` needs from an archive
    class, before the read; the seconds spent (0.0 for local stores and repositories with
    nothing archived)."""
    if not isinstance(store, S3ObjectStore):
        return 0.0
    target = engine.Target(store, base)
    cold = engine.cold_objects(target)
    if not cold:
        return 0.0
    needed = engine.objects_to_read(target, data_key, manifest_ids, path_prefix=path_prefix)
    return archive_retrieve(
        store,
        [key for key in needed if key in cold],
        progress=progress,
        max_wait_seconds=max_wait_seconds,
    )


def retrieval_done_message(seconds: float) -> str:
    return f"archive retrieval done after {_words(seconds)}"
