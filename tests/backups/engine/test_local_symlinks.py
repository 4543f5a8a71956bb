"""A local store never follows a symlink below its root: each test is an attack by whoever can
write into a local location (plant a link, swap a directory for one mid-call, leave a FIFO)
against the files outside it."""

from __future__ import annotations

import ctypes
import errno
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from backups.engine import BackupResult, SourceEmpty, backup, restore
from backups.storage import (
    AccessDenied,
    InvalidKey,
    LocalObjectStore,
    ObjectNotFound,
    StorageError,
)
from backups.storage.local.walk import open_root
from tests.backups.engine.conftest import CHUNK

SECRET = b"HOST-SECRET-9b1f04 never leaves the host"


@dataclass
class Planted:
    """A store whose root holds links to a secret file and a directory outside it."""

    store: LocalObjectStore
    root: Path
    outside: Path
    secret: Path

    def outside_tree(self) -> dict[str, bytes]:
        return {
            p.relative_to(self.outside).as_posix(): p.read_bytes() if p.is_file() else b"<dir>"
            for p in sorted(self.outside.rglob("*"))
        }


@pytest.fixture
def planted(tmp_path: Path) -> Planted:
    outside = tmp_path / "outside"
    (outside / "nested").mkdir(parents=True)
    secret = outside / "secret.txt"
    secret.write_bytes(SECRET)
    (outside / "nested" / "deep.txt").write_bytes(SECRET + b" (deep)")
    root = tmp_path / "root"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "real.txt").write_bytes(b"a real file")
    (root / "leak.txt").symlink_to(secret)  # a file link at the top
    (root / "docs" / "leak.txt").symlink_to(secret)  # a file link below a real directory
    (root / "mirror").symlink_to(outside)  # a directory link
    (root / "docs" / "up").symlink_to("..")  # a loop back into the root
    return Planted(LocalObjectStore(root), root, outside, secret)


def _must_not_leak(call: Callable[[], object]) -> Exception:
    """The call refuses (InvalidKey, or ObjectNotFound where nothing is there), never
    answering with the outside content or its size."""
    try:
        answer = call()
    except (InvalidKey, ObjectNotFound) as exc:
        return exc
    pytest.fail(f"answered {answer!r} through a symlink")


@pytest.mark.parametrize("key", ["leak.txt", "docs/leak.txt", "mirror/secret.txt"])
def test_a_symlink_to_outside_never_gives_its_content_or_size(planted: Planted, key: str) -> None:
    store = planted.store
    refused = _must_not_leak(lambda: store.get(key))
    assert isinstance(refused, InvalidKey)
    assert "symbolic link; not followed" in str(refused)

    def read_open() -> bytes:
        with store.open(key) as stream:
            return stream.read()

    assert isinstance(_must_not_leak(read_open), InvalidKey)
    # head would otherwise report the secret's size and mtime as the object's.
    assert isinstance(_must_not_leak(lambda: store.head(key)), InvalidKey)


def test_a_deeper_read_through_a_directory_link_is_refused(planted: Planted) -> None:
    for key in ("mirror/nested/deep.txt", "docs/up/mirror/secret.txt", "docs/up/leak.txt"):
        assert isinstance(_must_not_leak(lambda key=key: planted.store.get(key)), InvalidKey)


@pytest.mark.parametrize("key", ["mirror/new.txt", "mirror/nested/new.txt", "mirror/a/b/new"])
def test_a_write_through_a_directory_link_writes_nothing_outside(
    planted: Planted, key: str
) -> None:
    before = planted.outside_tree()
    with pytest.raises(InvalidKey, match=r"'mirror'.*symbolic link; not followed"):
        planted.store.put(key, b"planted by a tenant")
    # No file, no temporary file, no directory appeared outside.
    assert planted.outside_tree() == before


def test_a_write_to_a_link_itself_replaces_the_link_not_its_target(planted: Planted) -> None:
    planted.store.put("docs/leak.txt", b"the object")
    assert planted.secret.read_bytes() == SECRET
    assert not (planted.root / "docs" / "leak.txt").is_symlink()
    assert planted.store.get("docs/leak.txt") == b"the object"


def test_list_never_reads_outside_and_reports_what_it_declined(planted: Planted) -> None:
    skipped: list[str] = []
    keys = [info.key for info in planted.store.list("", skipped=skipped)]
    assert keys == ["docs/real.txt"]
    assert sorted(skipped) == ["docs/leak.txt", "docs/up", "leak.txt", "mirror"]

    versions: list[str] = []
    assert [v.key for v in planted.store.list_versions("", skipped=versions)] == keys
    assert sorted(versions) == sorted(skipped)

    # A prefix that starts below the directory link reports the link and reads nothing.
    skipped = []
    assert list(planted.store.list("mirror/", skipped=skipped)) == []
    assert skipped == ["mirror"]
    skipped = []
    assert list(planted.store.list("mirror/nested/", skipped=skipped)) == []
    assert skipped == ["mirror"]
    # Links outside the prefix are not reported against it.
    skipped = []
    assert [i.key for i in planted.store.list("docs/r", skipped=skipped)] == ["docs/real.txt"]
    assert skipped == []


def test_delete_through_a_directory_link_never_deletes_outside(planted: Planted) -> None:
    result = planted.store.delete_versions(
        [("mirror/secret.txt", None), ("mirror/nested/deep.txt", "null")]
    )
    assert [e.code for e in result.errors] == ["InvalidKey", "InvalidKey"]
    assert result.deleted == []
    assert planted.secret.read_bytes() == SECRET
    assert (planted.outside / "nested" / "deep.txt").exists()

    # Deleting the link itself removes the link, never what it points to.
    assert not planted.store.delete_versions([("leak.txt", None)]).errors
    assert not (planted.root / "leak.txt").is_symlink()
    assert planted.secret.read_bytes() == SECRET


def test_pruning_after_a_delete_stops_at_the_root_and_never_follows(planted: Planted) -> None:
    (planted.outside / "empty").mkdir()
    planted.store.put("a/b/c", b"x")
    assert not planted.store.delete_versions([("a/b/c", None)]).errors
    assert not (planted.root / "a").exists()
    assert planted.root.is_dir()
    assert (planted.outside / "empty").is_dir()


def test_discard_temporary_files_does_not_follow_a_directory_link(planted: Planted) -> None:
    theirs = planted.outside / ".agencyops-tmp-not-ours"
    theirs.write_bytes(b"a file outside with our prefix")
    (planted.outside / "nested" / ".agencyops-tmp-deeper").write_bytes(b"also outside")
    ours = planted.root / "docs" / ".agencyops-tmp-0123abcd"
    ours.write_bytes(b"a killed writer's half chunk")

    assert planted.store.discard_temporary_files() == 1
    assert not ours.exists()
    assert theirs.exists()
    assert (planted.outside / "nested" / ".agencyops-tmp-deeper").exists()


def _in_thread(call: Callable[[], object], *, unblock: Path) -> object:
    """Run `call`, failing (not hanging) if it blocks: opening a FIFO for reading waits for a
    writer. A blocked call is released by opening the FIFO for writing."""
    answer: list[object] = []
    worker = threading.Thread(target=lambda: answer.append(call()), daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():
        fd = os.open(unblock, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        worker.join(10)
        pytest.fail("the store opened the FIFO")
    assert answer, "the call raised in its thread"
    return answer[0]


def test_a_fifo_in_the_source_is_reported_and_never_opened(
    tmp_path: Path, init_target: Callable[[LocalObjectStore, str], None], data_key: bytes
) -> None:
    source = LocalObjectStore(tmp_path / "source", create=True, fsync=False)
    source.put("data/real.bin", b"real data")
    fifo = tmp_path / "source" / "data" / "pipe"
    os.mkfifo(fifo)

    skipped: list[str] = []
    keys = _in_thread(lambda: [i.key for i in source.list("data/", skipped=skipped)], unblock=fifo)
    assert keys == ["data/real.bin"]
    assert skipped == ["data/pipe"]
    assert _in_thread(lambda: source.head("data/pipe"), unblock=fifo) is None

    def get_pipe() -> str:
        with pytest.raises(ObjectNotFound) as caught:
            source.get("data/pipe")
        return str(caught.value)

    assert "data/pipe" in str(_in_thread(get_pipe, unblock=fifo))

    target = LocalObjectStore(tmp_path / "target", create=True, fsync=False)
    init_target(target, "repo")
    result = _in_thread(
        lambda: backup(
            source,
            "data",
            [(target, "repo")],
            data_key,
            chunk_size=CHUNK,
            repository_format=1,
            threads=2,
        ),
        unblock=fifo,
    )
    assert isinstance(result, BackupResult)
    assert result.stats.skipped_keys == ["data/pipe"]
    assert [f.path for f in result.manifest.files] == ["real.bin"]


def test_a_backup_names_the_links_in_its_source_and_never_reads_their_targets(
    planted: Planted,
    tmp_path: Path,
    init_target: Callable[[LocalObjectStore, str], None],
    data_key: bytes,
) -> None:
    target = LocalObjectStore(tmp_path / "target", create=True, fsync=False)
    init_target(target, "repo")
    result = backup(
        planted.store,
        "",
        [(target, "repo")],
        data_key,
        chunk_size=CHUNK,
        repository_format=1,
        threads=2,
    )
    assert sorted(result.stats.skipped_keys) == ["docs/leak.txt", "docs/up", "leak.txt", "mirror"]
    assert [f.path for f in result.manifest.files] == ["docs/real.txt"]

    out = LocalObjectStore(tmp_path / "out", create=True, fsync=False)
    restore(target, "repo", data_key, result.manifest_id, out)
    assert {i.key: out.get(i.key) for i in out.list("")} == {"docs/real.txt": b"a real file"}


def test_a_source_that_is_itself_a_link_is_refused_by_name(
    planted: Planted,
    tmp_path: Path,
    init_target: Callable[[LocalObjectStore, str], None],
    data_key: bytes,
) -> None:
    target = LocalObjectStore(tmp_path / "target", create=True, fsync=False)
    init_target(target, "repo")
    with pytest.raises(SourceEmpty, match="mirror"):
        backup(
            planted.store,
            "mirror",
            [(target, "repo")],
            data_key,
            chunk_size=CHUNK,
            repository_format=1,
        )


# --- races: the checked path swapped for a symlink before the open ---

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> None:
    """Swap two names atomically (renameat2 RENAME_EXCHANGE), so the raced name always exists,
    as a real directory or as a link."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.renameat2(_AT_FDCWD, bytes(a), _AT_FDCWD, bytes(b), _RENAME_EXCHANGE) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(a))


@pytest.fixture
def flipping(planted: Planted) -> Iterator[Planted]:
    """`flip` in the root keeps changing between a real directory (holding `flip/secret.txt`
    with harmless content) and a link to the outside directory (holding the secret)."""
    real = planted.root / "flip"
    real.mkdir()
    (real / "secret.txt").write_bytes(b"inside")
    link = planted.root / "flip-link"
    link.symlink_to(planted.outside)
    _exchange(real, link)
    _exchange(real, link)  # fail here, before the race, if the platform cannot swap
    stop = threading.Event()
    flips = [0]

    def flip() -> None:
        while not stop.is_set():
            _exchange(real, link)
            flips[0] += 1

    flipper = threading.Thread(target=flip, daemon=True)
    flipper.start()
    try:
        yield planted
    finally:
        stop.set()
        flipper.join(10)
    assert flips[0] > 100, "the race never ran"


def test_a_read_raced_by_a_symlink_swap_never_returns_outside_content(
    flipping: Planted,
) -> None:
    store = flipping.store
    answers: dict[str, int] = {}
    for _ in range(3000):
        try:
            data = store.get("flip/secret.txt")
        except (InvalidKey, ObjectNotFound) as exc:
            answers[type(exc).__name__] = answers.get(type(exc).__name__, 0) + 1
            continue
        assert data == b"inside", "a read followed the swapped-in link"
        answers["inside"] = answers.get("inside", 0) + 1
    assert answers.get("inside", 0) > 0, answers
    assert answers.get("InvalidKey", 0) > 0, answers


def test_a_write_raced_by_a_symlink_swap_never_lands_outside(flipping: Planted) -> None:
    before = flipping.outside_tree()
    stored = 0
    refusals: set[type[Exception]] = set()
    for i in range(2000):
        try:
            flipping.store.put(f"flip/new-{i}", b"tenant data")
            stored += 1
        except (StorageError, OSError) as exc:
            refusals.add(type(exc))
    assert flipping.outside_tree() == before, "a write followed the swapped-in link"
    assert stored > 0
    # Refused in the store's own words (never a stray OSError from a half-followed path).
    assert InvalidKey in refusals
    assert refusals <= {InvalidKey, StorageError}


def test_a_head_raced_by_a_symlink_swap_never_describes_outside(flipping: Planted) -> None:
    inside = len(b"inside")
    for _ in range(3000):
        try:
            info = flipping.store.head("flip/secret.txt")
        except InvalidKey:
            continue
        assert info is None or info.size == inside, "head described the outside file"


def test_a_root_whose_path_became_a_link_is_not_opened(tmp_path: Path) -> None:
    """The root is resolved, then opened from '/' one component at a time without following:
    a directory on its path replaced by a link in between is refused, not followed."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "location").symlink_to(tmp_path / "outside")
    with pytest.raises(AccessDenied, match=r"'location'.*not followed"):
        open_root(tmp_path / "location" / "sub")


def test_a_closed_store_reaches_no_file(tmp_path: Path) -> None:
    """After close() the root's descriptor number may be reused by any other open file; the
    store must then fail, not act relative to whatever that descriptor now is."""
    store = LocalObjectStore(tmp_path)
    store.put("k", b"v")
    store.close()
    reused = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(OSError, match="Bad file descriptor") as caught:
            store.get("k")
        assert caught.value.errno == errno.EBADF
        store.close()  # idempotent
    finally:
        os.close(reused)


def test_no_descriptor_outlives_its_call(planted: Planted) -> None:
    """Every refusal and every success closes what it opened: a leak per call would let a
    tenant's links exhaust a worker's descriptors."""
    planted.store.close()

    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    before = open_fds()
    store = LocalObjectStore(planted.root)
    for _ in range(50):
        store.put("docs/a/b/new.txt", b"x")
        assert store.get("docs/a/b/new.txt") == b"x"
        with store.open("docs/real.txt") as stream:
            stream.read()
        assert store.head("docs/real.txt") is not None
        assert store.head("docs/missing") is None
        for refused in ("mirror/secret.txt", "leak.txt", "docs/up/real.txt"):
            with pytest.raises(InvalidKey):
                store.get(refused)
            with pytest.raises(InvalidKey):
                store.head(refused)
        with pytest.raises(InvalidKey):
            store.put("mirror/new", b"x")
        with pytest.raises(StorageError):
            store.put("docs/real.txt/below", b"x")
        with pytest.raises(ObjectNotFound):
            store.get("docs/real.txt/below")
        assert [i.key for i in store.list("docs/", skipped=[])] == [
            "docs/a/b/new.txt",
            "docs/real.txt",
        ]
        next(store.list_versions(""))  # abandoned mid-iteration
        result = store.delete_versions([("docs/a/b/new.txt", None), ("mirror/x", None)])
        assert result.deleted == [("docs/a/b/new.txt", None)]
        assert [e.code for e in result.errors] == ["InvalidKey"]
        store.discard_temporary_files()
    assert open_fds() == before + 1  # the root, held for the store's life
    store.close()
    assert open_fds() == before
