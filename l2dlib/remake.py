"""Remake one of the paper's figures from nothing: the exact commands, their measured time,
and ``make figure FIG=1c`` (``python -m l2dlib.remake 1c``) that runs them.

A remake trains a new seed (7, which no committed table holds) into a fresh results folder
and executes the figure's notebook on it through papermill, so it shows what the code does
now rather than what the committed tables hold. The CIFAR-10 figures first train their
heads through the CLI, on the committed feature extractor (copied into the folder, so the
half-hour extractor is not retrained); they need CIFAR-10 under ``data/``. The figure and
the executed notebook land in the folder (default ``build/remake/FIG``).

Each study page shows its figures' commands in a "Remake this figure" box
(:func:`box_markdown`), with the time this module measured on 2 cores (:data:`MEASURED`).
The figures beyond the paper's, drawn from the committed tables (:data:`REDRAWS`), get a
box that redraws them from those tables (``make figure FIG=beyond``); the commands that made
the tables, with their wall times, are in the tables' provenance.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SEED = 7  # a seed no committed table holds: everything is trained afresh


@dataclass(frozen=True)
class Remake:
    """How one figure is remade: the notebook that draws it, the PNG it writes, and for
    CIFAR-10 the study the CLI trains first."""

    label: str  # the figure's label in the book
    notebook: str  # under book/
    png: str  # the file the notebook writes under its figures_dir
    cifar_study: str | None = None


REMAKES = {
    "3": Remake("fig-3", "notebooks/00_mog_dataset.ipynb", "figure3_mog.png"),
    "1ab": Remake("fig-1-mog-increasing", "notebooks/01_increasing_experts.ipynb", "figure1_ab_mog.png"),
    "1c": Remake("fig-1-mog-dependence", "notebooks/02_expert_dependence.ipynb", "figure1_c_mog.png"),
    "1de": Remake(
        "fig-1-cifar-increasing",
        "notebooks/01_increasing_experts.ipynb",
        "figure1_de_cifar10.png",
        "increasing_experts",
    ),
    "1f": Remake(
        "fig-1-cifar-dependence", "notebooks/02_expert_dependence.ipynb", "figure1_f_cifar10.png", "expert_dependence"
    ),
    "2": Remake("fig-2", "notebooks/03_specialized_experts.ipynb", "figure2_cifar10.png", "specialized_experts"),
}


@dataclass(frozen=True)
class Redraw:
    """A page whose figures come from the committed tables: its notebook (under book/) and
    the PNGs it writes under its figures_dir."""

    notebook: str
    pngs: tuple[str, ...]
    cifar_study = None  # nothing to train first


REDRAWS = {
    "1": Redraw("figures.ipynb", ("figure1.png",)),
    "beyond": Redraw(
        "notebooks/04_beyond_the_paper.ipynb",
        ("reliability_mog.png", "degeneracy_mog.png", "reliability_cifar10.png", "degeneracy_cifar10.png"),
    ),
    "budget": Redraw("notebooks/05_why_the_numbers_differ.ipynb", ("training_budget.png",)),
    "human": Redraw(
        "notebooks/06_real_human_experts.ipynb",
        tuple(
            f"human_{name}.png"
            for name in ("increasing_experts", "expert_dependence", "specialized_experts", "reliability", "shift")
        ),
    ),
    "answers": Redraw("notebooks/07_the_2026_answers.ipynb", ("answers_sweep.png",)),
    # The CPU regime trained end to end: its tables took 79 min on 2 cores (the commands are
    # in their provenance); the redraw reads them.
    "1de-e2e": Redraw("notebooks/01_increasing_experts.ipynb", ("increasing_experts_cifar10_end_to_end.png",)),
    "1f-e2e": Redraw("notebooks/02_expert_dependence.ipynb", ("expert_dependence_cifar10_end_to_end.png",)),
}
FIGURES = (*REMAKES, *REDRAWS)  # what `make figure FIG=...` accepts
# Wall seconds of `python -m l2dlib.remake FIG`, one run each, back to back on an idle 2-core
# machine (2026-12-01, the offline CIFAR-10 copy, the four methods); None where not measured.
MEASURED: dict[str, float | None] = {
    "3": 10,
    "1ab": 56,
    "1c": 40,
    "1de": 249,
    "1f": 175,
    "2": 146,
    "1": 11,
    "beyond": 14,
    "budget": 9,
    "human": 10,
    "answers": 12,
    "1de-e2e": 17,
    "1f-e2e": 12,
}


def commands(fig: str, folder: str = "remake") -> list[str]:
    """The shell commands that remake figure ``fig`` into ``folder`` (relative to the
    repository's root, where they run), as the box shows them."""
    r = _check(fig)
    out = [f"R=$PWD/{shlex.quote(folder)}; mkdir -p $R"]  # absolute: the notebook runs in its own folder
    if r.cifar_study:
        out += [
            "mkdir -p $R/cifar10 && cp results/cifar10/extractor-*.pt $R/cifar10/",
            f"python -m l2dlib run {r.cifar_study} --dataset cifar10 --profile frozen_features "
            f"--seeds {SEED} --results-dir $R --data-dir data",
        ]
    params = " ".join(
        f'-y "{k}: [{v[0]}]"' if isinstance(v, list) else f"-p {k} {'$R' if v is _FOLDER else v}"
        for k, v in parameters(r).items()
    )
    cwd = Path("book", r.notebook).parent.as_posix()
    out.append(f"papermill book/{r.notebook} $R/{Path(r.notebook).stem}.ipynb {params} --cwd {cwd}")
    return out


_FOLDER = object()  # stands for the remake's folder in parameters()


def parameters(r: Remake | Redraw) -> dict:
    """The notebook's papermill parameters: the folder for its results and figures, seed
    :data:`SEED` for the MoG studies it runs, the CPU profile for its CIFAR-10 section; a
    redraw only its figures' folder (it reads the committed tables)."""
    out = {"figures_dir": _FOLDER}
    if isinstance(r, Redraw):
        return out
    if r.notebook != "notebooks/00_mog_dataset.ipynb":  # the data page trains nothing
        out["results_dir"] = _FOLDER
    if r.notebook in ("notebooks/01_increasing_experts.ipynb", "notebooks/02_expert_dependence.ipynb"):
        out["seeds"] = [SEED]
    if r.cifar_study:
        out["cifar_profile"] = "frozen_features"
    return out


def box_markdown(fig: str) -> str:
    """The collapsed "Remake this figure" box under a figure (MyST)."""
    r = _check(fig)
    seconds = MEASURED[fig]
    took = (
        f"Measured: {seconds:.0f} s on 2 CPU cores."
        if seconds is not None
        else "Its time on 2 CPU cores has not been measured yet."
    )
    lines = "\n".join(commands(fig))
    where = f"(or `make figure FIG={fig}`, which uses `build/remake/{fig}`)"
    if isinstance(r, Redraw):
        what = (
            f"This figure is drawn from the committed tables. From the repository's root, this redraws it from them "
            f"into `remake/` {where}. {took} The commands that made the tables, with their wall times, are in each "
            "table's provenance ({doc}`/reproducibility`); the same commands with `--force` recompute them."
        )
    else:
        cifar = " It needs CIFAR-10 under `data/` (see the README)." if r.cifar_study else ""
        what = f"From the repository's root, training seed {SEED} afresh into `remake/` {where}. {took}{cifar}"
    return f":::{{dropdown}} Remake this figure\n{what}\n\n```bash\n{lines}\n```\n:::\n"


def run(fig: str, folder: Path | None = None) -> Path:
    """Run :func:`commands` for ``fig`` in this process; return the figure's path."""
    import papermill

    from .__main__ import main as cli

    r = _check(fig)
    folder = (folder or REPO / "build" / "remake" / fig).resolve()
    if folder.exists():
        shutil.rmtree(folder)  # from nothing, every time
    folder.mkdir(parents=True)
    if r.cifar_study:
        (folder / "cifar10").mkdir()
        for weights in (REPO / "results" / "cifar10").glob("extractor-*.pt"):
            shutil.copy2(weights, folder / "cifar10")
        args = ["run", r.cifar_study, "--dataset", "cifar10", "--profile", "frozen_features"]
        args += ["--seeds", str(SEED), "--results-dir", str(folder), "--data-dir", str(REPO / "data")]
        if cli(args) != 0:
            raise RuntimeError(f"training for figure {fig} failed: python -m l2dlib {shlex.join(args)}")
    params = {k: str(folder) if v is _FOLDER else v for k, v in parameters(r).items()}
    notebook = REPO / "book" / r.notebook
    papermill.execute_notebook(
        str(notebook), str(folder / notebook.name), parameters=params, cwd=str(notebook.parent), progress_bar=False
    )
    return folder / (r.pngs[0] if isinstance(r, Redraw) else r.png)


def _check(fig: str) -> Remake | Redraw:
    if fig not in FIGURES:
        raise ValueError(f"unknown figure {fig!r}: expected one of {', '.join(FIGURES)}")
    return REMAKES.get(fig) or REDRAWS[fig]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m l2dlib.remake", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "figure", choices=list(FIGURES), help="which figure: the paper's numbering, or a page's beyond the paper"
    )
    parser.add_argument("--folder", type=Path, help="where (default build/remake/FIGURE; emptied first)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    png = run(args.figure, args.folder)
    print(f"figure {args.figure}: {png} ({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
