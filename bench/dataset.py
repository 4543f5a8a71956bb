"""The benchmark's data set: deterministic (seeded), incompressible, shaped like client work."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class Dataset:
    root: Path
    files: list[str]

    @property
    def total_bytes(self) -> int:
        return sum((self.root / name).stat().st_size for name in self.files)


def generate(root: Path, *, seed: int = 20250101) -> Dataset:
    """300 files, about 255 MB: 240 of 4-64 KiB, 54 of 1 MiB, 6 of 32 MiB, in 12 folders."""
    rng = random.Random(seed)
    sizes = [rng.randint(4 * KIB, 64 * KIB) for _ in range(240)]
    sizes += [1 * MIB] * 54 + [32 * MIB] * 6
    rng.shuffle(sizes)
    names = []
    for index, size in enumerate(sizes):
        name = f"project-{index % 12:02d}/file {index:03d}.bin"
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_random(path, size, rng)
        names.append(name)
    return Dataset(root, names)


def change_one_percent(dataset: Dataset, *, seed: int = 7) -> list[str]:
    """Rewrite 1% of the files (3 of 300) with new content of the same size."""
    rng = random.Random(seed)
    chosen = rng.sample(dataset.files, max(1, len(dataset.files) // 100))
    for name in chosen:
        path = dataset.root / name
        _write_random(path, path.stat().st_size, rng)
    return chosen


def _write_random(path: Path, size: int, rng: random.Random) -> None:
    # Written in 1 MiB pieces so the benchmark process itself stays small: its peak RSS would
    # otherwise be inherited by (and inflate) the engine's ru_maxrss in the child processes.
    with path.open("wb") as out:
        remaining = size
        while remaining:
            piece = min(remaining, MIB)
            out.write(rng.randbytes(piece))
            remaining -= piece
