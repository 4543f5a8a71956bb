"""backup_dataset, restore_snapshot and verify_snapshot from the command line."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from backups.models import BackupRun, Snapshot
from backups.services import policy_update, protection_create
from clients import services as inventory
from kernel.tenancy import Actor
from tests.conftest import World


@pytest.fixture
def setup(world: World, org_root: Path) -> dict[str, Any]:
    tmp_path = org_root
    source = tmp_path / "primary" / "ds"
    (source / "deep" / "er").mkdir(parents=True)
    (source / "a file with spaces.txt").write_text("alpha\n")
    (source / "deep" / "er" / "ünïcode.bin").write_bytes(bytes(range(256)) * 1000)
    (source / "empty").write_bytes(b"")
    system = Actor.system(world.org)
    primary = inventory.location_create(
        actor=system,
        name="disk",
        kind="local",
        provider="filesystem",
        prefix=str(tmp_path / "primary"),
    )
    targets = []
    for name in ("backup one", "backup two"):
        (tmp_path / name).mkdir()
        targets.append(
            inventory.location_create(
                actor=system,
                name=name,
                kind="local",
                provider="filesystem",
                prefix=str(tmp_path / name),
            )
        )
    inventory.namespace_assign(actor=system, location=primary, client=world.client, path="ds")
    dataset = inventory.dataset_register(
        actor=system,
        client=world.client,
        name="docs",
        kind="project_docs",
        location=primary,
        path="ds",
    )
    policy = protection_create(dataset).policy
    assert policy is not None
    policy_update(actor=system, policy=policy, targets=targets)
    return {"dataset": dataset, "source": source, "targets": targets, "tmp": tmp_path}


def _run(*args: Any) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_backup_json_restore_and_verify(setup: dict[str, Any]) -> None:
    out = _run("backup_dataset", str(setup["dataset"].public_id), "--json")
    document = json.loads(out.strip().splitlines()[-1])
    assert document["status"] == "succeeded"
    assert document["files"] == 3
    assert len(document["snapshots"]) == 2
    assert {s["target_name"] for s in document["snapshots"]} == {"backup one", "backup two"}
    assert all(s["files"] == 3 and s["bytes"] == 256_006 for s in document["snapshots"])
    snapshot_id = document["snapshots"][0]["id"]

    destination = setup["tmp"] / "restored"
    restored = _run("restore_snapshot", snapshot_id, "--to", str(destination), "--no-progress")
    assert "Restored 3 files" in restored
    for path in setup["source"].rglob("*"):
        if path.is_file():
            twin = destination / path.relative_to(setup["source"])
            assert twin.read_bytes() == path.read_bytes()

    verified = _run("verify_snapshot", snapshot_id, "--read-data-subset", "100%")
    assert "OK: no missing or corrupt chunks" in verified

    again = json.loads(
        _run("backup_dataset", str(setup["dataset"].public_id), "--json").strip().splitlines()[-1]
    )
    assert again["files_reused"] == 3
    assert again["new_bytes"] == 0


def test_verify_reports_a_corrupt_chunk(setup: dict[str, Any]) -> None:
    _run("backup_dataset", str(setup["dataset"].public_id), "--no-progress")
    snapshot = Snapshot.objects.filter(location=setup["targets"][0]).get()
    packs = [p for p in (setup["tmp"] / "backup one").rglob("data/*") if p.is_file()]
    chunk = max(packs, key=lambda p: p.stat().st_size)  # file data, not the file list
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with pytest.raises(CommandError, match="Snapshot damaged"):
        _run("verify_snapshot", str(snapshot.public_id))


def test_missing_source_fails_clearly(setup: dict[str, Any]) -> None:
    import shutil

    shutil.rmtree(setup["source"])
    with pytest.raises(CommandError, match="Backup failed"):
        _run("backup_dataset", str(setup["dataset"].public_id), "--no-progress")
    run = BackupRun.objects.get()
    assert run.status == "failed"
    assert run.error
    assert not Snapshot.objects.exists()


def test_unknown_ids_are_command_errors(world: World) -> None:
    with pytest.raises(CommandError, match="No dataset"):
        _run("backup_dataset", "00000000-0000-0000-0000-000000000000")
    with pytest.raises(CommandError, match="No snapshot"):
        _run("restore_snapshot", "00000000-0000-0000-0000-000000000000", "--to", "restored-nowhere")
    with pytest.raises(CommandError, match="percentage"):
        _run(
            "verify_snapshot", "00000000-0000-0000-0000-000000000000", "--read-data-subset", "lots"
        )
