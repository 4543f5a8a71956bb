"""Repository format 2 next to restic and BorgBackup, on local directory repositories.

A compressible, agency-shaped data set made here (seeded): CSV exports, JSONL logs, a SQL text
dump, model weights (incompressible) and 20,000 small JSON label files. Measured for each tool:
bytes stored after the first backup, bytes added by a small edit set (a line inserted near the
start of the largest CSV, a line appended to a log, one label file changed), and, for the label
files alone, the time and the number of objects (files in the repository) written. Then trees
of 50,000 and 200,000 small files, ours beside restic: first backup, no-change rerun and full
restore, each with its time and peak RSS, so the memory that grows with the file count shows
as bytes per added file.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import tools

LABELS = 20_000
MANY = 200_000
FEWER = 50_000
TIMEOUT = 600.0


def _csv(path: Path, rows: int, rng: random.Random) -> None:
    clients = [f"client-{i:03d}" for i in range(300)]
    with path.open("w") as out:
        out.write("id,client,stage,amount,created,notes\n")
        for i in range(rows):
            out.write(
                f"{i},{rng.choice(clients)},{rng.choice(['lead', 'open', 'won', 'lost'])},"
                f"{rng.random() * 10000:.2f},2026-{rng.randrange(1, 13):02d}-"
                f"{rng.randrange(1, 29):02d},{rng.getrandbits(40):x}\n"
            )


def _jsonl(path: Path, events: int, rng: random.Random) -> None:
    with path.open("w") as out:
        for i in range(events):
            event = {
                "seq": i,
                "type": rng.choice(["page_view", "click", "signup", "purchase"]),
                "user": rng.randrange(100_000),
                "ms": rng.randrange(5000),
            }
            out.write(json.dumps(event) + "\n")


def _sql(path: Path, rows: int, rng: random.Random) -> None:
    with path.open("w") as out:
        out.write("CREATE TABLE annotations (id integer, label text, score real);\n")
        for i in range(rows):
            out.write(
                # A dump's text, written to a file; no query is built or run.
                f"INSERT INTO annotations VALUES ({i}, "  # noqa: S608
                f"'{rng.choice(['cat', 'dog', 'car', 'tree'])}', {rng.random():.5f});\n"
            )


def _labels(root: Path, count: int, rng: random.Random) -> None:
    for i in range(count):
        folder = root / f"{i // 1000:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        box = [rng.randrange(640) for _ in range(4)]
        (folder / f"{i:06d}.json").write_text(
            json.dumps({"image": f"img_{i:06d}.jpg", "label": rng.randrange(80), "box": box})
        )


def generate(root: Path) -> dict[str, int]:
    rng = random.Random(20261202)
    root.mkdir(parents=True)
    _csv(root / "crm_export.csv", 520_000, rng)
    _jsonl(root / "events.jsonl", 230_000, rng)
    _sql(root / "annotations.sql", 180_000, rng)
    (root / "model.safetensors").write_bytes(rng.randbytes(24 * 1024 * 1024))
    _labels(root / "labels", LABELS, rng)
    files = [p for p in root.rglob("*") if p.is_file()]
    return {"files": len(files), "bytes": sum(p.stat().st_size for p in files)}


def edit(root: Path) -> None:
    """The small edit set: one line near the top of the CSV, one appended to the log, one
    label changed."""
    export = root / "crm_export.csv"
    lines = export.read_bytes().split(b"\n", 2)
    export.write_bytes(
        lines[0] + b"\n" + lines[1] + b"\n0,client-new,lead,1.00,2026-12-01,x\n" + lines[2]
    )
    with (root / "events.jsonl").open("a") as out:
        out.write('{"seq": -1, "type": "signup", "user": 1, "ms": 1}\n')
    (root / "labels" / "000" / "000007.json").write_text('{"image": "img_000007.jpg", "label": 3}')


def _du(path: Path) -> tuple[int, int]:
    """(bytes, files) of a repository directory."""
    files = [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def _run(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    return _run_rss(argv, env, cwd)[0]


def _run_rss(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one command: GNU time's %M, the child's own maximum."""
    handle, name = tempfile.mkstemp(prefix="bench-rss-")
    os.close(handle)
    report = Path(name)
    started = time.monotonic()
    subprocess.run(
        ["/usr/bin/time", "-f", "%M", "-o", str(report), *argv],
        env=env,
        cwd=cwd,
        check=True,
        capture_output=True,
        timeout=TIMEOUT,
    )
    seconds = time.monotonic() - started
    rss_kb = float(report.read_text().strip().splitlines()[-1])
    report.unlink()
    return seconds, rss_kb / 1024


class Ours:
    name = "ours"

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self.rss_mb = 0.0

    def init(self) -> None:
        pass

    def backup(self, source: Path) -> float:
        return self.backup_rss(source)[0]

    def backup_rss(self, source: Path) -> tuple[float, float]:
        return self._child(str(source), str(self.repo))

    def restore_rss(self, target: Path) -> tuple[float, float]:
        return self._child("--restore", str(self.repo), str(target))

    def _child(self, *args: str) -> tuple[float, float]:
        out = subprocess.run(
            [sys.executable, "-m", "bench.format2_child", *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        report = json.loads(out.stdout.strip().splitlines()[-1])
        self.rss_mb = max(self.rss_mb, float(report["maxrss_mb"]))
        return float(report["seconds"]), float(report["maxrss_mb"])


class Restic:
    name = "restic"

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self.env = {
            **os.environ,
            "RESTIC_REPOSITORY": str(repo),
            "RESTIC_PASSWORD": "bench",
            "RESTIC_CACHE_DIR": str(repo) + ".cache",
        }

    def init(self) -> None:
        _run(["restic", "init"], self.env)

    def backup(self, source: Path) -> float:
        return self.backup_rss(source)[0]

    def backup_rss(self, source: Path) -> tuple[float, float]:
        return _run_rss(["restic", "backup", ".", "--host", "bench"], self.env, cwd=source)

    def restore_rss(self, target: Path) -> tuple[float, float]:
        return _run_rss(["restic", "restore", "latest", "--target", str(target)], self.env)


class Borg:
    name = "borg"

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self.count = 0
        self.env = {
            **os.environ,
            "BORG_PASSPHRASE": "bench",
            "BORG_BASE_DIR": str(repo) + ".base",
            "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes",
        }

    def init(self) -> None:
        _run(["borg", "init", "--encryption=repokey", str(self.repo)], self.env)

    def backup(self, source: Path) -> float:
        self.count += 1
        return _run(
            ["borg", "create", "--compression", "zstd,3", f"{self.repo}::s{self.count}", "."],
            self.env,
            cwd=source,
        )


def _tools(work: Path, tag: str) -> list[Any]:
    found: list[Any] = [Ours(work / f"ours-{tag}")]
    if tools.available("restic"):
        found.append(Restic(work / f"restic-{tag}"))
    if tools.available("borg"):
        found.append(Borg(work / f"borg-{tag}"))
    return found


def section_format2(work: Path) -> dict[str, Any]:
    source = work / "agency"
    shape = generate(source)
    results: dict[str, Any] = {"dataset": shape, "tools": {}}
    for tool in _tools(work, "agency"):
        tool.init()
        first_s = tool.backup(source)
        first_bytes, _ = _du(tool.repo)
        results["tools"][tool.name] = {
            "first_seconds": round(first_s, 2),
            "first_bytes": first_bytes,
        }
    edit(source)
    for tool in _tools(work, "agency"):
        before, _ = _du(tool.repo)
        if isinstance(tool, Borg):
            tool.count = 1
        tool.backup(source)
        results["tools"][tool.name]["edit_bytes"] = _du(tool.repo)[0] - before
    labels = source / "labels"
    for tool in _tools(work, "labels"):
        tool.init()
        empty_bytes, empty_files = _du(tool.repo) if tool.repo.exists() else (0, 0)
        seconds = tool.backup(labels)
        stored, files = _du(tool.repo)
        results["tools"][tool.name].update(
            labels_seconds=round(seconds, 2),
            labels_objects=files - empty_files,
            labels_bytes=stored - empty_bytes,
        )
    results["many"] = _many_small_files(work)
    results["goals"] = _goals(results)
    shutil.rmtree(source, ignore_errors=True)
    return results


def _small_tree(root: Path, count: int) -> None:
    rng = random.Random(7)
    for i in range(count):
        folder = root / f"{i // 2000:03d}"
        if i % 2000 == 0:
            folder.mkdir(parents=True)
        (folder / f"{i:06d}.txt").write_bytes(b"label %d %d\n" % (i, rng.randrange(1000)))


def _many_small_files(work: Path) -> dict[str, Any]:
    """Per tree size and tool: first backup, no-change rerun and restore, time and peak RSS."""
    out: dict[str, Any] = {"files": MANY, "sizes": {}}
    for count in (FEWER, MANY):
        root = work / f"many-{count}"
        _small_tree(root, count)
        sized: dict[str, Any] = {}
        for tool in _tools(work, f"many-{count}"):
            if isinstance(tool, Borg):
                continue
            tool.init()
            first, first_rss = tool.backup_rss(root)
            rerun, rerun_rss = tool.backup_rss(root)
            target = work / f"restored-{tool.name}-{count}"
            restore, restore_rss = tool.restore_rss(target)
            restored = sum(1 for p in target.rglob("*") if p.is_file())
            if restored != count:
                raise RuntimeError(f"{tool.name} restored {restored} of {count} files")
            shutil.rmtree(target, ignore_errors=True)
            shutil.rmtree(tool.repo, ignore_errors=True)
            sized[tool.name] = {
                "first_seconds": round(first, 2),
                "rerun_seconds": round(rerun, 2),
                "restore_seconds": round(restore, 2),
                "first_rss_mb": round(first_rss, 1),
                "rerun_rss_mb": round(rerun_rss, 1),
                "restore_rss_mb": round(restore_rss, 1),
                "peak_rss_mb": round(max(first_rss, rerun_rss, restore_rss), 1),
            }
        out["sizes"][str(count)] = sized
        shutil.rmtree(root, ignore_errors=True)
    # The 200,000-file figures at the top level, as the goals and tables read them.
    out.update(out["sizes"][str(MANY)])
    for name in out["sizes"][str(MANY)]:
        small, large = out["sizes"][str(FEWER)][name], out["sizes"][str(MANY)][name]
        out[name]["rss_bytes_per_added_file"] = round(
            (large["peak_rss_mb"] - small["peak_rss_mb"]) * 1024 * 1024 / (MANY - FEWER)
        )
    return out


def _goals(results: dict[str, Any]) -> dict[str, bool | None]:
    ours = results["tools"]["ours"]
    restic = results["tools"].get("restic")
    many = results["many"]
    mib4 = ours["labels_bytes"] / (4 * 1024 * 1024)
    return {
        "format 2: first backup bytes <= restic's": None
        if restic is None
        else ours["first_bytes"] <= restic["first_bytes"],
        "format 2: bytes added by the edit set <= 1.5 x restic's": None
        if restic is None
        else ours["edit_bytes"] <= 1.5 * restic["edit_bytes"],
        # + key, manifest and the packs' indexes
        "format 2: objects for 20,000 small files <= 1 per 4 MiB + manifest and index": (
            ours["labels_objects"] <= max(1, -(-int(mib4 * 1000) // 1000)) * 2 + 2
        ),
        "format 2: 200,000 files no-change rerun < restic's": None
        if "restic" not in many
        else many["ours"]["rerun_seconds"] < many["restic"]["rerun_seconds"],
        "format 2: 200,000 files peak RSS < 500 MB": many["ours"]["peak_rss_mb"] < 500,
    }
