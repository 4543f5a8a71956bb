"""The markdown tables bench.run prints: built from the results it writes to results.json,
so a table shows exactly what the file records."""

from __future__ import annotations

from typing import Any

from bench import dispatch


def table(results: dict[str, Any]) -> str:
    """The storage sections: one row a section, one column a contender."""
    env, settings = results["environment"], results["settings"]
    lines = [
        f"Benchmark of {results['date']} on {env['cpus']} cores (Python {env['python']}; "
        f"rclone: {env['rclone']}; restic: {env['restic']}).",
        f"Data set: {results['dataset']['files']} files, "
        f"{results['dataset']['bytes'] / 1e6:.0f} MB; every figure is the median of "
        f"{settings['repeat']} runs ({settings['restore_repeat']} for restore); 'ours' excludes "
        "interpreter start-up (the tools' figures include theirs; see process_seconds in "
        "results.json).",
        "",
    ]
    whos = ["boto3", "ours", "rclone", "restic"]
    lines += ["| section | " + " | ".join(whos) + " |", "|---|" + "---|" * len(whos)]
    for section, results_ in results["sections"].items():
        cells = []
        for who in whos:
            entry = results_.get(who)
            if entry is None:
                cells.append("")
            elif entry["seconds"] is None:
                cells.append(entry.get("note", "n/a"))
            else:
                rate = f" ({entry['mb_per_s']} MB/s)" if "mb_per_s" in entry else ""
                cells.append(f"{entry['seconds']:.2f} s{rate}")
        lines.append(f"| {section} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def deletion_table(result: dict[str, Any]) -> str:
    return "\n".join(
        [
            "",
            f"Deletion of {result['versions']:,} object versions over {result['targets']} targets:",
            "",
            "| who | seconds | versions/s |",
            "|---|---|---|",
            f"| raw batched delete_objects | {result['raw_seconds']:.2f} | "
            f"{result['raw_versions_per_second']:.0f} |",
            f"| ours (plan, claim, delete, destroy keys, verify, certificate) | "
            f"{result['ours_seconds']:.2f} | {result['ours_versions_per_second']:.0f} "
            f"({result['ratio_to_raw']:.2f} x raw) |",
        ]
    )


def access_log_table(result: dict[str, Any]) -> str:
    both = result["recorded_and_appended"]
    return "\n".join(
        [
            "",
            f"Access log ({result['database']}):",
            "",
            "| measure | result | goal |",
            "|---|---|---|",
            f"| events appended by the worker's drain task | "
            f"{result['appends_per_second']:.0f} events/s | >= 500 events/s |",
            f"| recorded by {both['producers']} request threads and appended by "
            f"{both['workers']} workers, end to end | {both['events_per_second']:.0f} events/s | "
            "(includes the requests' side) |",
            f"| verify a chain of {result['verify_events']:,} events | "
            f"{result['verify_seconds']:.2f} s | < 5 s |",
        ]
    )


def evidence_table(result: dict[str, Any]) -> str:
    return "\n".join(
        [
            "",
            f"Procurement evidence ({result['database']}, {result['client']}): one client with "
            f"{result['datasets']:,} datasets, {result['snapshots']:,} snapshots and "
            f"{result['access_events']:,} access events; {result['document_bytes'] / 1e6:.1f} MB "
            f"signed document, {result['queries_per_request']} queries per request:",
            "",
            "| measure | wall clock | CPU of the request | goal |",
            "|---|---|---|---|",
            f"| median of {result['requests']} requests | {result['median_ms']:.0f} ms | "
            f"{result['cpu_median_ms']:.0f} ms | |",
            f"| p95 of {result['requests']} requests | {result['p95_ms']:.0f} ms | "
            f"{result['cpu_p95_ms']:.0f} ms | < 300 ms |",
            f"| first request (walks the whole access chain) | "
            f"{result['first_request_ms']:.0f} ms | | |",
        ]
    )


def dispatch_table(result: dict[str, Any]) -> str:
    return "\n".join(
        [
            "",
            f"Dispatcher ({result['database']}): {result['datasets']:,} datasets, "
            f"{result['due']:,} due:",
            "",
            "| measure | result | goal |",
            "|---|---|---|",
            f"| queries to find the due (dataset, target) pairs | {result['queries']} | 1 |",
            f"| median / worst of {dispatch.RUNS} ticks | {result['median_seconds']:.3f} s / "
            f"{result['worst_seconds']:.3f} s | < 1 s |",
        ]
    )


def _mb(value: int | None) -> str:
    return "not measured" if value is None else f"{value / 1e6:.2f} MB"


def format2_table(result: dict[str, Any]) -> str:
    """Repository format 2 next to restic and BorgBackup, local directory repositories."""
    shape = result["dataset"]
    tools_ = result["tools"]
    names = [n for n in ("ours", "restic", "borg") if n in tools_]

    def row(label: str, key: str, fmt: Any) -> str:
        cells = [fmt(tools_[n].get(key)) for n in names]
        return f"| {label} | " + " | ".join(cells) + " |"

    many = result["many"]
    lines = [
        "",
        f"Format 2, local directory repositories: agency-shaped set of {shape['files']:,} files, "
        f"{shape['bytes'] / 1e6:.1f} MB (CSV, JSONL, SQL dump, 24 MB weights, 20,000 labels):",
        "",
        "| | "
        + " | ".join(
            {
                "ours": "AgencyOps (format 2)",
                "restic": "restic (default compression)",
                "borg": "BorgBackup (zstd,3)",
            }[n]
            for n in names
        )
        + " |",
        "|---|" + "---|" * len(names),
        row("first backup, bytes stored", "first_bytes", _mb),
        row("first backup, time", "first_seconds", lambda v: f"{v:.1f} s"),
        row("bytes added by the edit set", "edit_bytes", _mb),
        row("20,000 small files: time", "labels_seconds", lambda v: f"{v:.1f} s"),
        row("20,000 small files: objects (files) written", "labels_objects", str),
        "",
        "| small files | tool | first backup | no-change rerun | restore | peak RSS "
        "(backup / rerun / restore) |",
        "|---|---|---|---|---|---|",
        *[
            f"| {int(count):,} | {name} | {r['first_seconds']:.1f} s | "
            f"{r['rerun_seconds']:.1f} s | {r['restore_seconds']:.1f} s | "
            f"{r['first_rss_mb']:.0f} / {r['rerun_rss_mb']:.0f} / {r['restore_rss_mb']:.0f} MB |"
            for count, tools_at in many["sizes"].items()
            for name, r in tools_at.items()
        ],
        "",
        "Peak RSS growth per added file, 50,000 → 200,000 files: "
        + ", ".join(
            f"{name} {many[name]['rss_bytes_per_added_file']} B"
            for name in many["sizes"][str(many["files"])]
        ),
    ]
    return "\n".join(lines)


def databases_table(result: dict[str, Any]) -> str:
    """A PostgreSQL database as a source: its dumps through the engine, beside pg_dump | zstd."""
    base = result["pg_dump_zstd"]

    def row(label: str, run: dict[str, Any]) -> str:
        return (
            f"| {label} | {run['seconds']:.1f} s (dump {run['dump_seconds']:.1f} s) | "
            f"{_mb(run['added_bytes'])} | {_mb(base['bytes'])} |"
        )

    return "\n".join(
        [
            "",
            f"PostgreSQL source: {result['rows']:,} rows, {_mb(result['dump_text_bytes'])} of "
            "dump text (directory format, uncompressed), format 2 into a local repository:",
            "",
            "| run | AgencyOps: dump + backup | AgencyOps: bytes added | pg_dump \\| zstd -3: "
            "bytes stored |",
            "|---|---|---|---|",
            row("first", result["first"]),
            row("no change", result["no_change"]),
            row("newest 1% of rows changed", result["one_percent_recent"]),
            row("1% of rows changed, scattered", result["one_percent_scattered"]),
            f"| all four | | {_mb(result['repository_bytes_after_four'])} | "
            f"{_mb(result['pg_dump_zstd_bytes_for_four'])} ({base['seconds']:.1f} s each) |",
        ]
    )
