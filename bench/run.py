"""The performance benchmark: our engine next to raw S3 puts, rclone and restic.

Run from the project root: `.venv/bin/python -m bench.run`. It generates a seeded ~255 MB data
set, starts its own moto S3 server, runs each section in order, writes bench/results.json and
prints markdown tables (bench/tables.py; with the date and core count). Add a section by
appending a function to SECTIONS.

Robustness: every child process has a timeout, a failing or timed-out section is recorded and
the run goes on, and sections that would start after the overall deadline (BENCH_DEADLINE
seconds, default 540) are skipped and reported as such, so a run ends within ~10 minutes.
Missing reference tools are reported up front and in the table, never silently.
"""

from __future__ import annotations

import filecmp
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench import access_log, compressible, databases, deletion, dispatch, evidence, tables, tools
from bench.dataset import Dataset, change_one_percent, generate
from tests.s3server import moto_server

THREADS = 16
# Every figure is the median of this many runs, for our engine and the tools alike.
REPEAT = 3
# Restores add nothing to the server, so they can afford more rounds on this noisy shared box.
RESTORE_REPEAT = 5
RESULTS = Path(__file__).with_name("results.json")
# The whole run stops starting new sections after this many seconds.
DEADLINE = float(os.environ.get("BENCH_DEADLINE", "540"))
# No single child process (engine operation or tool run) may take longer than this.
CHILD_TIMEOUT = 180.0


@dataclass
class Bench:
    work: Path
    dataset: Dataset
    endpoint: str
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    skipped: list[str] = field(default_factory=list)

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
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, check=False, timeout=CHILD_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"engine {op} timed out after {CHILD_TIMEOUT:.0f} s") from None
    if proc.returncode != 0:
        raise RuntimeError(f"engine {op} failed:\n{proc.stderr[-2000:]}")
    report: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    # Wall time of the whole child, interpreter start-up and imports included: what a CLI
    # user would see, for comparison with the tools' figures (which include their start-up).
    report["process_seconds"] = time.perf_counter() - started
    if op != "raw-put":
        bench.peak_rss_mb = max(bench.peak_rss_mb, report["maxrss_mb"])
    return report


def _median_of(reports: list[dict[str, Any]], key: str) -> float:
    return round(float(statistics.median(float(r[key]) for r in reports)), 3)


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
        process_seconds=_median_of(mine, "process_seconds"),
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
                process_seconds=_median_of(reports, "process_seconds"),
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
    """Ours, rclone and restic restore the same snapshot, interleaved round by round.

    Interleaving gives each contender the same share of whatever else the machine is doing.
    Every one of our restores is checked byte for byte against the source; each target is
    removed after its round so the disk does not fill up.
    """
    rclone = tools.Rclone(bench.endpoint)
    restic = tools.Restic(bench.endpoint, last("restic"))
    reports: list[dict[str, Any]] = []
    identical = True
    samples: dict[str, list[float]] = {"rclone": [], "restic": []}
    failures: dict[str, str] = {}
    for i in range(RESTORE_REPEAT):
        target = bench.work / f"restore-ours-{i}"
        reports.append(engine(bench, "restore", target, last("ours")))
        identical = identical and _identical(bench.dataset.root, target, bench.dataset.files)
        shutil.rmtree(target, ignore_errors=True)
        if tools.available("rclone") and "rclone" not in failures:
            rc_target = bench.work / f"rc-{i}"
            _collect(
                rclone.copy(f"bench:{last('rclone')}", str(rc_target)), "rclone", samples, failures
            )
            shutil.rmtree(rc_target, ignore_errors=True)
        if tools.available("restic") and "restic" not in failures:
            restic_target = bench.work / f"restic-{i}"
            _collect(restic.restore(restic_target), "restic", samples, failures)
            shutil.rmtree(restic_target, ignore_errors=True)
    bench.record(
        "restore",
        "ours",
        [r["seconds"] for r in reports],
        maxrss_mb=round(max(r["maxrss_mb"] for r in reports), 1),
        process_seconds=_median_of(reports, "process_seconds"),
        stats=reports[-1]["stats"],
        byte_identical=identical,
    )
    for name, values in samples.items():
        _record_tool(bench, "restore", name, values, failures)


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
        "peak RSS < 300 MB": bench.peak_rss_mb < 300 if bench.peak_rss_mb else None,
        "restore byte-identical": bench.sections.get("restore", {})
        .get("ours", {})
        .get("byte_identical"),
    }


def tool_versions() -> dict[str, str]:
    versions = {}
    for name, flag in (("rclone", "version"), ("restic", "version")):
        if tools.available(name):
            out = subprocess.run([name, flag], capture_output=True, text=True, check=False)
            versions[name] = out.stdout.splitlines()[0] if out.stdout else "unknown"
        else:
            versions[name] = "not installed"
    return versions


def _announce_tools() -> None:
    for name in ("rclone", "restic"):
        if not tools.available(name):
            print(
                f"NOTE: {name} is not installed (not on PATH): its columns will read "
                f"'not measured' and the goals that compare against it cannot be judged.",
                file=sys.stderr,
            )


def _run_sections(bench: Bench, started: float) -> None:
    for section in SECTIONS:
        name = section.__name__.removeprefix("section_").replace("_", " ")
        elapsed = time.monotonic() - started
        if elapsed > DEADLINE:
            bench.skipped.append(f"{name}: skipped, the run passed its {DEADLINE:.0f} s deadline")
            print(f"skipping {name}: {elapsed:.0f} s elapsed", file=sys.stderr)
            continue
        print(f"[{elapsed:5.0f} s] {name} ...", file=sys.stderr)
        try:
            section(bench)
        except (RuntimeError, OSError, ValueError, KeyError, subprocess.SubprocessError) as exc:
            bench.skipped.append(f"{name}: failed: {str(exc)[-500:]}")
            print(f"{name} failed: {exc}", file=sys.stderr)


def _deletion_section(bench: Bench) -> dict[str, Any] | None:
    """Cascading deletion against the same moto endpoint, next to raw batched deletes."""
    print("deletion ...", file=sys.stderr)
    try:
        return deletion.section_deletion(SimpleNamespace(endpoint=bench.endpoint, sections={}))
    except (RuntimeError, OSError, ValueError, KeyError, subprocess.SubprocessError) as exc:
        bench.skipped.append(f"deletion: failed: {str(exc)[-500:]}")
        return None


def _side_section(
    bench: Bench, name: str, measure: Callable[[Any], dict[str, Any]]
) -> dict[str, Any] | None:
    """A section that needs no S3 endpoint (it runs its own child process against a throwaway
    database), measured after the storage sections; a failure is recorded, not raised."""
    print(f"{name} ...", file=sys.stderr)
    try:
        return measure(None)
    except (RuntimeError, OSError, ValueError, KeyError, subprocess.SubprocessError) as exc:
        bench.skipped.append(f"{name}: failed: {str(exc)[-500:]}")
        return None


def _format2(bench: Bench) -> dict[str, Any]:
    """Format 2 against restic and Borg on local repositories, in a scratch folder of its own."""
    with tempfile.TemporaryDirectory(prefix="agencyops-bench-f2-") as scratch:
        return compressible.section_format2(Path(scratch))


def _databases() -> dict[str, Any]:
    """A PostgreSQL database's dumps through the engine, beside pg_dump | zstd."""
    with tempfile.TemporaryDirectory(prefix="agencyops-bench-db-") as scratch:
        return databases.section_databases(Path(scratch))


def main() -> None:
    started = time.monotonic()
    # The benchmark's moto server listens on loopback: the operator's allow list must name it,
    # and every section (children inherit the environment) is measured under the policy.
    os.environ["AGENCYOPS_EGRESS_ALLOW"] = "127.0.0.1"
    _announce_tools()
    with tempfile.TemporaryDirectory(prefix="agencyops-bench-") as tmp:
        work = Path(tmp)
        dataset = generate(work / "source")
        os.environ.setdefault("BENCH_MASTER_KEY", os.urandom(32).hex())
        with moto_server() as endpoint:
            bench = Bench(work, dataset, endpoint)
            _run_sections(bench, started)
            deletion_result = _deletion_section(bench)
        results = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "dataset": {"files": len(dataset.files), "bytes": dataset.total_bytes},
            "settings": {
                "threads": THREADS,
                "repository_format": 2,
                "repeat": REPEAT,
                "restore_repeat": RESTORE_REPEAT,
            },
            "environment": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                **tool_versions(),
            },
            "sections": bench.sections,
            "problems": bench.skipped,
            "peak_rss_mb": round(bench.peak_rss_mb, 1),
            "goals": goals(bench),
            "run_seconds": round(time.monotonic() - started, 1),
        }
    results["deletion"] = deletion_result
    if deletion_result:
        results["goals"].update(deletion_result.get("goals", {}))
    results["access_log"] = _side_section(bench, "access log", access_log.section_access_log)
    if results["access_log"]:
        results["goals"].update(results["access_log"].get("goals", {}))
    results["evidence"] = _side_section(bench, "evidence", evidence.section_evidence)
    if results["evidence"]:
        results["goals"].update(results["evidence"].get("goals", {}))
    results["format2"] = _side_section(bench, "format 2", lambda _: _format2(bench))
    if results["format2"]:
        results["goals"].update(results["format2"].get("goals", {}))
    results["databases"] = _side_section(bench, "databases", lambda _: _databases())
    if results["databases"]:
        results["goals"].update(results["databases"].get("goals", {}))
    results["dispatch"] = _side_section(bench, "dispatch", dispatch.section_dispatch)
    if results["dispatch"]:
        results["goals"].update(results["dispatch"].get("goals", {}))
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(tables.table(results))
    if results["deletion"]:
        print(tables.deletion_table(results["deletion"]))
    if results["access_log"]:
        print(tables.access_log_table(results["access_log"]))
    if results["evidence"]:
        print(tables.evidence_table(results["evidence"]))
    if results["dispatch"]:
        print(tables.dispatch_table(results["dispatch"]))
    if results["format2"]:
        print(tables.format2_table(results["format2"]))
    if results["databases"]:
        print(tables.databases_table(results["databases"]))
    print(f"\npeak RSS of the engine: {bench.peak_rss_mb:.0f} MB")
    for goal, met in results["goals"].items():
        print(f"- {goal}: {'met' if met else 'NOT met' if met is False else 'not measured'}")
    for problem in bench.skipped:
        print(f"- PROBLEM: {problem}")
    print(f"\n(run took {results['run_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
