"""Time `make book`: a cold build (fresh output folder, a results folder holding only the
committed tables: no cache, no quick or smoke tables) and a warm one (the same command again).

    python benchmarks/book_build.py                          # profile paper
    python benchmarks/book_build.py --profile quick          # quick: its seeds come from the paper table
    python benchmarks/book_build.py --profile quick --seeds 5 6 7   # nothing to reuse: trains 117 models

Prints one table row per build; the targets (issue 10) are under 3 minutes cold and 60 s warm
on 2 cores.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from l2dlib import book

REPO = Path(__file__).resolve().parent.parent


def committed_results(dst: Path) -> None:
    """The committed files under results/ (what a fresh clone has)."""
    files = subprocess.run(
        ["git", "ls-files", "results"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in files:
        target = dst / Path(name).relative_to("results")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--seeds", type=int, nargs="+")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        results_dir, output = Path(tmp) / "results", Path(tmp) / "book"
        committed_results(results_dir)
        for kind in ("cold", "warm"):
            t0 = time.perf_counter()
            book.build(profile=args.profile, seeds=args.seeds, output=output, results_dir=results_dir, quiet=True)
            rows.append((kind, time.perf_counter() - t0))
    seeds = "the profile's" if args.seeds is None else " ".join(map(str, args.seeds))
    print("| build | profile | seeds | wall time |\n| --- | --- | --- | --- |")
    for kind, seconds in rows:
        print(f"| {kind} | {args.profile} | {seeds} | {seconds:.0f} s |")


if __name__ == "__main__":
    main()
