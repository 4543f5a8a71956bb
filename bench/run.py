"""The performance benchmark: our engine next to raw S3 puts, rclone and restic.

Run from the project root: `.venv/bin/python -m bench.run`. It generates a seeded ~255 MB data
set, starts its own moto S3 server, runs each section in order, writes bench/results.json and
prints a markdown table. Add a section by appending a function to SECTIONS.
"""

from __future__ import annotations

import filecmp
import functools
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import tools
from bench.dataset import Dataset, change_one_percent, generate
from tests.s3server import moto_server

THREADS = 16
CHUNK_MIB = 4
# Every figure is the median of this many runs, for our engine and the tools alike.
REPEAT = 3
RESULTS = Path(__file__).with_name("results.json")


@dataclass
class Bench:
    work: Path
    dataset: Dataset
    endpoint: str
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    peak_rss_mb: float = 0.0

    def record(self, section: str, who: str, samples: list[float], **extra: Any) -> None:
        """Keep every sample; the median is the figure (the box is shared and noisy)."""
        entry: dict[str, Any] = {"seconds": None, "samples": [round(x, 3) for x in samples]}
        if samples:
            median = statistics.median(samples)
            entry["seconds"] = round(median, 3)
            entry["mb_per_s"] = round(self.dataset.total_bytes / median / 1e6, 1)
        entry.update(extra)
        self.sections.setdefault(section, {})[who] = entry

    def seconds(self, section: str, who: str) -> float | None:
        value = self.sections.get(section, {}).get(who, {}).get("seconds")
        return float(value) if value is not None else None


def engine(bench: Bench, op: str, directory: Path, bucket: str) -> dict[str, Any]:
    """Run one engine operation in a child process; remember the engine's peak RSS."""
    argv = [sys.executable, "-m", "bench.engine_child", op, "--endpoint", bench.endpoint]
    argv += ["--bucket", bucket, "--dir", str(directory), "--threads", str(THREADS)]
    argv += ["--chunk-mib", str(CHUNK_MIB)]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"engine {op} failed:\n{proc.stderr[-2000:]}")
    report: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    if op != "raw-put":
        bench.peak_rss_mb = max(bench.peak_rss_mb, report["maxrss_mb"])
    return report


def ours(bench: Bench, section: str, op: str, runs: list[tuple[Path, str]]) -> list[dict[str, Any]]:
    reports = [engine(bench, op, directory, bucket) for directory, bucket in runs]
    bench.record(
        section,
        "boto3" if op == "raw-put" else "ours",
        [r["seconds"] for r in reports],
        maxrss_mb=round(max(r["maxrss_mb"] for r in reports), 1),
        stats=reports[-1]["stats"],
    )
    return reports


def tool(bench: Bench, section: str, name: str, actions: list[Callable[[], tools.ToolRun]]) -> None:
    if not tools.available(name):
        bench.record(section, name, [], note=f"{name} not on PATH: not measured")
        return
    samples = []
    for action in actions:
        run = action()
        if not run.ok:
            bench.record(section, name, [], note=f"failed: {run.detail.strip()}")
            return
        samples.append(run.seconds)
    bench.record(section, name, samples)


def last(name: str) -> str:
    return f"{name}-{REPEAT}"


def section_full_backup(bench: Bench) -> None:
    """Raw puts, our backup, rclone and restic, interleaved round by round into fresh buckets.

    moto keeps every object in its own process and slows down as it fills, so interleaving
    gives each contender the same conditions. Later sections use the last round's buckets.
    """
    root = bench.dataset.root
    rclone = tools.Rclone(bench.endpoint)
    samples: dict[str, list[float]] = {"rclone": [], "restic": []}
    raw: list[dict[str, Any]] = []
    mine: list[dict[str, Any]] = []
    failures: dict[str, str] = {}
    for i in range(1, REPEAT + 1):
        # The endpoint's limit: every file put once, in parallel, with nothing else done.
        raw.append(engine(bench, "raw-put", root, f"raw-{i}"))
        engine(bench, "init", root, f"ours-{i}")
        mine.append(engine(bench, "backup", root, f"ours-{i}"))
        if tools.available("rclone"):
            rclone.mkdir(f"rclone-{i}")
            run = rclone.copy(str(root), f"bench:rclone-{i}")
            _collect(run, "rclone", samples, failures)
        if tools.available("restic"):
            restic = tools.Restic(bench.endpoint, f"restic-{i}")
            restic.init()
            _collect(restic.backup(root), "restic", samples, failures)
    bench.record("raw parallel put", "boto3", [r["seconds"] for r in raw])
    bench.record(
        "full backup",
        "ours",
        [r["seconds"] for r in mine],
        stats=mine[-1]["stats"],
        maxrss_mb=round(max(r["maxrss_mb"] for r in mine), 1),
    )
    for name, values in samples.items():
        _record_tool(bench, "full backup", name, values, failures)


def _collect(
    run: tools.ToolRun, name: str, samples: dict[str, list[float]], failures: dict[str, str]
) -> None:
    if run.ok:
        samples[name].append(run.seconds)
    else:
        failures[name] = run.detail.strip()


def _record_tool(
    bench: Bench, section: str, name: str, values: list[float], failures: dict[str, str]
) -> None:
    if not tools.available(name):
        bench.record(section, name, [], note=f"{name} not on PATH: not measured")
    elif name in failures:
        bench.record(section, name, [], note=f"failed: {failures[name]}")
    else:
        bench.record(section, name, values)


def _rerun(bench: Bench, section: str, before_each: Callable[[int], object]) -> None:
    root = bench.dataset.root
    rclone = tools.Rclone(bench.endpoint)
    restic = tools.Restic(bench.endpoint, last("restic"))
    # Ours last: the restore section checks our latest snapshot against the source as it is.
    for who in ("rclone", "restic", "ours"):
        samples: list[float] = []
        reports = []
        for i in range(REPEAT):
            before_each(i)
            if who == "ours":
                reports.append(engine(bench, "backup", root, last("ours")))
            elif tools.available(who):
                run = (
                    rclone.copy(str(root), f"bench:{last('rclone')}")
                    if who == "rclone"
                    else restic.backup(root)
                )
                if run.ok:
                    samples.append(run.seconds)
        if who == "ours":
            bench.record(
                section,
                who,
                [r["seconds"] for r in reports],
                stats=reports[-1]["stats"],
                maxrss_mb=round(max(r["maxrss_mb"] for r in reports), 1),
            )
        elif not tools.available(who):
            bench.record(section, who, [], note=f"{who} not on PATH: not measured")
        else:
            bench.record(section, who, samples)


def section_no_change(bench: Bench) -> None:
    _rerun(bench, "no-change rerun", lambda _: None)


def section_one_percent(bench: Bench) -> None:
    # Every repetition of every tool first sees a fresh 1% of the files rewritten
    # (distinct, deterministic seeds).
    seeds = itertools.count(1000)
    _rerun(
        bench,
        "rerun, 1% of files changed",
        lambda _: change_one_percent(bench.dataset, seed=next(seeds)),
    )


def _identical(left: Path, right: Path, names: list[str]) -> bool:
    found = sorted(str(p.relative_to(right)) for p in right.rglob("*") if p.is_file())
    if found != sorted(names):
        return False
    return all(filecmp.cmp(left / n, right / n, shallow=False) for n in names)


def section_restore(bench: Bench) -> None:
    targets = [bench.work / f"restore-ours-{i}" for i in range(REPEAT)]
    ours(bench, "restore", "restore", [(t, last("ours")) for t in targets])
    identical = all(_identical(bench.dataset.root, t, bench.dataset.files) for t in targets)
    bench.sections["restore"]["ours"]["byte_identical"] = identical
    rclone = tools.Rclone(bench.endpoint)
    restic = tools.Restic(bench.endpoint, last("restic"))
    tool(
        bench,
        "restore",
        "rclone",
        [
            functools.partial(rclone.copy, f"bench:{last('rclone')}", str(bench.work / f"rc-{i}"))
            for i in range(REPEAT)
        ],
    )
    tool(
        bench,
        "restore",
        "restic",
        [functools.partial(restic.restore, bench.work / f"restic-{i}") for i in range(REPEAT)],
    )


SECTIONS: list[Callable[[Bench], None]] = [
    section_full_backup,
    section_no_change,
    section_one_percent,
    section_restore,
]


def goals(bench: Bench) -> dict[str, Any]:
    """The targets we hold ourselves to; None when a reference tool was not measured."""

    def at_most(ours: float | None, theirs: float | None) -> bool | None:
        return None if ours is None or theirs is None else ours <= theirs

    raw = bench.seconds("raw parallel put", "boto3")
    full = bench.seconds("full backup", "ours")
    return {
        "full backup <= rclone copy": at_most(full, bench.seconds("full backup", "rclone")),
        "full backup >= 0.8 x raw put throughput": (
            None if raw is None or full is None else raw / full >= 0.8
        ),
        "no-change rerun < restic": at_most(
            bench.seconds("no-change rerun", "ours"), bench.seconds("no-change rerun", "restic")
        ),
        "restore <= rclone copy": at_most(
            bench.seconds("restore", "ours"), bench.seconds("restore", "rclone")
        ),
        "peak RSS < 300 MB": bench.peak_rss_mb < 300,
        "restore byte-identical": bench.sections["restore"]["ours"]["byte_identical"],
    }


def table(bench: Bench) -> str:
    whos = ["boto3", "ours", "rclone", "restic"]
    lines = ["| section | " + " | ".join(whos) + " |", "|---|" + "---|" * len(whos)]
    for section, results in bench.sections.items():
        cells = []
        for who in whos:
            entry = results.get(who)
            if entry is None:
                cells.append("")
            elif entry["seconds"] is None:
                cells.append(entry.get("note", "n/a"))
            else:
                rate = f" ({entry['mb_per_s']} MB/s)" if "mb_per_s" in entry else ""
                cells.append(f"{entry['seconds']:.2f} s{rate}")
        lines.append(f"| {section} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tool_versions() -> dict[str, str]:
    versions = {}
    for name, flag in (("rclone", "version"), ("restic", "version")):
        if tools.available(name):
            out = subprocess.run([name, flag], capture_output=True, text=True, check=False)
            versions[name] = out.stdout.splitlines()[0] if out.stdout else "unknown"
        else:
            versions[name] = "not installed"
    return versions


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="agencyops-bench-") as tmp:
        work = Path(tmp)
        dataset = generate(work / "source")
        os.environ.setdefault("BENCH_MASTER_KEY", os.urandom(32).hex())
        with moto_server() as endpoint:
            bench = Bench(work, dataset, endpoint)
            for section in SECTIONS:
                section(bench)
        results = {
            "dataset": {"files": len(dataset.files), "bytes": dataset.total_bytes},
            "settings": {"threads": THREADS, "chunk_mib": CHUNK_MIB, "repeat": REPEAT},
            "environment": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                **tool_versions(),
            },
            "sections": bench.sections,
            "peak_rss_mb": round(bench.peak_rss_mb, 1),
            "goals": goals(bench),
        }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(table(bench))
    print(f"\npeak RSS of the engine: {bench.peak_rss_mb:.0f} MB")
    for goal, met in results["goals"].items():
        print(f"- {goal}: {'met' if met else 'NOT met' if met is False else 'not measured'}")


if __name__ == "__main__":
    main()
