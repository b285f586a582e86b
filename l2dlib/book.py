"""Build the Jupyter Book: execute every notebook with papermill, then build the HTML.

``python -m l2dlib.book [--profile paper] [--output book]`` copies ``book/`` to
``<output>/_build/src``, executes the notebooks there (so the sources stay free of
outputs), bundles MathJax for offline reading, and runs ``jupyter-book build`` with
warnings as errors. The HTML lands in ``<output>/_build/html``. Needs the ``book``
extra (papermill, jupyter-book, jupyter-server-mathjax).

One concern over 350 lines: the build, and the registry of the book's figures it lists.
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures
import hashlib
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .profiles import DEFAULT_PROFILE
from .results import resolve_dir

REPO = Path(__file__).resolve().parent.parent
# The notebooks, longest first, and what each must wait for: 01 and 02 run (or read) the
# MoG studies; 04 reruns them from the cache and the figures page reads their tables; the
# reproducibility page reads what all the others wrote. The rest may run at any time.
NOTEBOOKS = (
    "notebooks/01_increasing_experts.ipynb",
    "notebooks/02_expert_dependence.ipynb",
    "notebooks/00_mog_dataset.ipynb",
    "derivations.ipynb",
    "notebooks/03_specialized_experts.ipynb",
    "notebooks/05_why_the_numbers_differ.ipynb",
    "notebooks/04_beyond_the_paper.ipynb",
    "notebooks/06_real_human_experts.ipynb",
    "notebooks/07_the_2026_answers.ipynb",
    "figures.ipynb",
    "reproducibility.ipynb",
)
_MOG_STUDIES = {"notebooks/01_increasing_experts.ipynb", "notebooks/02_expert_dependence.ipynb"}
NEEDS = {
    "notebooks/04_beyond_the_paper.ipynb": _MOG_STUDIES,
    "notebooks/07_the_2026_answers.ipynb": _MOG_STUDIES,
    "figures.ipynb": _MOG_STUDIES,
    "reproducibility.ipynb": set(NOTEBOOKS) - {"reproducibility.ipynb"},
}
# Pages that show the moment of the build (its commit and date): executed on every build.
ALWAYS_EXECUTED = ("reproducibility.ipynb",)

# Every figure of the book: its label, its name (the paper's figure and panels it re-makes;
# figures are not numbered, so that no book number fights the paper's), the tables it reads
# (PROFILE: the page's profile; CIFAR-10: the profile shown, see pages.shown_cifar_profile)
# and its page. The reproducibility page's figure map is made from this list.
FIGURES = (
    ("fig-1", "Figure 1", "mog/ and cifar10/ increasing_experts, expert_dependence", "figures"),
    ("fig-3", "Figure 3", "(the data only)", "notebooks/00_mog_dataset"),
    (
        "fig-1-mog-increasing",
        "Figure 1 (a, b), MoG",
        "mog/increasing_experts-PROFILE.csv",
        "notebooks/01_increasing_experts",
    ),
    (
        "fig-1-cifar-increasing",
        "Figure 1 (d, e), CIFAR-10",
        "cifar10/increasing_experts-PROFILE.csv",
        "notebooks/01_increasing_experts",
    ),
    (
        "fig-1-mog-dependence",
        "Figure 1 (c), MoG",
        "mog/expert_dependence-PROFILE.csv",
        "notebooks/02_expert_dependence",
    ),
    (
        "fig-1-cifar-dependence",
        "Figure 1 (f), CIFAR-10",
        "cifar10/expert_dependence-PROFILE.csv",
        "notebooks/02_expert_dependence",
    ),
    (
        "fig-1-cifar-increasing-end-to-end",
        "Figure 1 (d, e), CIFAR-10 trained end to end on a CPU",
        "cifar10/increasing_experts-cpu_end_to_end.csv",
        "notebooks/01_increasing_experts",
    ),
    (
        "fig-1-cifar-dependence-end-to-end",
        "Figure 1 (f), CIFAR-10 trained end to end on a CPU",
        "cifar10/expert_dependence-cpu_end_to_end.csv",
        "notebooks/02_expert_dependence",
    ),
    ("fig-2", "Figure 2", "cifar10/specialized_experts-PROFILE.csv", "notebooks/03_specialized_experts"),
    (
        "fig-budget",
        "ECE against the distance from the optimum (beyond the paper)",
        "mog/ and cifar10/ training_budget-PROFILE.csv",
        "notebooks/05_why_the_numbers_differ",
    ),
    (
        "fig-reliability-mog",
        "Reliability diagrams (beyond the paper)",
        "mog/*-PROFILE.reliability.csv",
        "notebooks/04_beyond_the_paper",
    ),
    (
        "fig-degeneracy-mog",
        "Estimates above 1 (beyond the paper)",
        "mog/increasing_experts, expert_dependence",
        "notebooks/04_beyond_the_paper",
    ),
    (
        "fig-reliability-cifar10",
        "Reliability diagrams, CIFAR-10 (beyond the paper)",
        "cifar10/*-PROFILE.reliability.csv",
        "notebooks/04_beyond_the_paper",
    ),
    (
        "fig-degeneracy-cifar10",
        "Estimates above 1, CIFAR-10 (beyond the paper)",
        "cifar10/increasing_experts, expert_dependence",
        "notebooks/04_beyond_the_paper",
    ),
    *(
        (
            f"fig-human-{study.replace('_', '-')}",
            f"{name} with human experts (beyond the paper)",
            f"cifar10/, cifar10h/, cifar10n/ {study}-frozen_features.csv",
            "notebooks/06_real_human_experts",
        )
        for study, name in (
            ("increasing_experts", "Figure 1 (d, e)"),
            ("expert_dependence", "Figure 1 (f)"),
            ("specialized_experts", "Figure 2"),
        )
    ),
    (
        "fig-human-reliability",
        "Reliability of one human expert (beyond the paper)",
        "cifar10h/, cifar10n/ increasing_experts-frozen_features.reliability.csv",
        "notebooks/06_real_human_experts",
    ),
    (
        "fig-human-shift",
        "The shifted crowd (beyond the paper)",
        "cifar10n/ increasing_experts, shifted_crowd-frozen_features.csv",
        "notebooks/06_real_human_experts",
    ),
    (
        "fig-answers-sweep",
        "The four methods along J (beyond the paper)",
        "mog/increasing_experts-PROFILE.csv, cifar10/increasing_experts-frozen_features.csv",
        "notebooks/07_the_2026_answers",
    ),
)


def figure_map() -> str:
    """The figure-to-table map as a MyST table (for the reproducibility page)."""
    lines = ["| figure | tables | page |", "| --- | --- | --- |"]
    for label, name, tables, page in FIGURES:
        lines.append(f"| {{ref}}`{name} <{label}>` | `{tables}` | {{doc}}`{page}` |")
    return "\n".join(lines)


def _mathjax_dir() -> Path:
    import jupyter_server_mathjax

    return Path(jupyter_server_mathjax.__file__).parent / "static"


def overrides(declared: dict, parameters: dict) -> dict:
    """The parameters a notebook declares whose value differs from its default: only these
    are injected, so a book built with the defaults shows no injected cell, and no build
    machine's path reaches a page or a downloadable notebook."""
    out = {}
    for name, value in parameters.items():
        if name not in declared:
            continue
        try:
            default = ast.literal_eval(declared[name]["default"])
        except (ValueError, SyntaxError):
            default = object()
        if value != default:
            out[name] = value
    return out


def execute_notebook(src: Path, dst: Path, parameters: dict) -> None:
    """Run one notebook with papermill in its own folder, injecting only :func:`overrides`
    (a cell kept in the notebook, removed from its page), and drop papermill's record of
    the build's file paths from its metadata."""
    import nbformat
    import papermill as pm

    params = overrides(pm.inspect_notebook(str(src)), parameters)
    pm.execute_notebook(
        str(src),
        str(dst),
        parameters=params,
        cwd=str(src.parent),
        kernel_name="python3",
        progress_bar=False,
        log_output=False,
    )
    nb = nbformat.read(dst, as_version=4)
    for key in ("input_path", "output_path"):
        nb.metadata.get("papermill", {}).pop(key, None)
    for cell in nb.cells:  # the page names its profile and data itself; the download keeps it
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
    nbformat.write(nb, dst)


def _timed_execute(path: Path, params: dict) -> float:
    t0 = time.perf_counter()
    execute_notebook(path, path, params)
    return time.perf_counter() - t0


def _run_in_order(pool, workers: int, todo: list[str], stage: Path, params: dict):
    """Execute ``todo`` on ``pool``, each notebook once what it :data:`NEEDS` has run (or is
    not to run), ``workers`` at a time; yields (notebook, seconds) as each finishes."""
    waiting, running, done = list(todo), {}, set(NOTEBOOKS) - set(todo)
    while waiting or running:
        for nb in [nb for nb in waiting if NEEDS.get(nb, set()) <= done][: workers - len(running)]:
            waiting.remove(nb)
            running[pool.submit(_timed_execute, stage / nb, params)] = nb
        finished, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
        for fut in finished:
            nb = running.pop(fut)
            yield nb, fut.result()
            done.add(nb)


PACKAGES = ("torch", "numpy", "pandas", "matplotlib", "seaborn", "myst-nb", "jupyter-book", "sphinx")
KEY_FILE = ".executed-key"  # in the staging folder, written once every notebook ran


def execution_key(book_dir: Path, results_dir: Path, params: dict) -> str:
    """What the executed notebooks are a function of: the book's sources, the library's code,
    the result tables (not the cache: the tables hold what it held), the parameters and the
    software. A build whose key matches the staged one reuses its executed notebooks and
    figures (and Sphinx then re-reads only what changed)."""
    from importlib import metadata

    h = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode())
    h.update(sys.version.encode())
    for pkg in PACKAGES:
        h.update(f"{pkg}={metadata.version(pkg)}".encode())

    def add_tree(root: Path, files) -> None:
        for path in sorted(files):
            h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())

    skip = {"_build", "figures", ".ipynb_checkpoints", "cache", "jobs", "__pycache__"}

    def tree(root: Path, pattern: str = "*"):
        return [p for p in root.rglob(pattern) if p.is_file() and not skip.intersection(p.relative_to(root).parts)]

    add_tree(book_dir, tree(book_dir))
    package = Path(__file__).resolve().parent
    add_tree(package, tree(package, "*.py"))
    if results_dir.is_dir():
        add_tree(results_dir, tree(results_dir))
    return h.hexdigest()


def build(
    *,
    profile: str = DEFAULT_PROFILE["mog"],
    cifar_profile: str | None = None,
    output: Path = REPO / "book",
    results_dir: Path | None = None,
    seeds: list[int] | None = None,
    book_dir: Path = REPO / "book",
    quiet: bool = False,
) -> Path:
    """Execute the notebooks and build the HTML; returns the HTML folder.

    ``profile`` is the MoG studies' (run live); ``cifar_profile`` names the CIFAR-10
    results shown (read from ``results_dir``, never trained here; None: the GPU profiles'
    where committed, else the CPU profile's).
    """
    output = Path(output).resolve()
    stage = output / "_build" / "src"
    # Notebooks find the repository's results/ themselves (results_dir None) and write
    # figures to ../figures relative to their folder, which the staging copy keeps.
    params = {"profile": profile, "cifar_profile": cifar_profile, "seeds": seeds}
    if results_dir is not None and Path(results_dir).resolve() != resolve_dir(None).resolve():
        params["results_dir"] = str(Path(results_dir).resolve())
    results_root = resolve_dir(results_dir).resolve()
    key = execution_key(book_dir, results_root, params)
    key_file = stage / KEY_FILE
    if key_file.is_file() and key_file.read_text() == key:
        todo = list(ALWAYS_EXECUTED)
        for nb in ALWAYS_EXECUTED:  # copy2 keeps the other pages' times: Sphinx skips them
            shutil.copy2(book_dir / nb, stage / nb)
        if not quiet:
            print(f"reusing the executed notebooks in {stage} (nothing they read has changed)", flush=True)
    else:
        if stage.exists():
            shutil.rmtree(stage)
        # Fresh file times: Sphinx re-reads every page (the introduction pastes from figures).
        ignore = shutil.ignore_patterns("_build", "figures", ".ipynb_checkpoints")
        shutil.copytree(book_dir, stage, ignore=ignore, copy_function=shutil.copyfile)
        shutil.copytree(_mathjax_dir(), stage / "_mathjax" / "mathjax")  # see _config.yml
        todo = list(NOTEBOOKS)

    # Papermill starts each kernel in its folder by changing the working directory of the
    # process that calls it, so notebooks run side by side only in processes of their own
    # (two threads raced: figures landed in the wrong folder). Kernel start-up and imports
    # dominate, and two at once finish the build about a third sooner on 2 cores.
    workers = max(1, min(2, os.cpu_count() or 1))
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        for nb, seconds in _run_in_order(pool, workers, todo, stage, params):
            if not quiet:
                print(f"executed {nb} in {seconds:.1f} s", flush=True)
    cmd = [
        str(Path(sys.executable).parent / "jupyter-book"),
        "build",
        str(stage),
        "--path-output",
        str(output),
        "--warningiserror",
        "--keep-going",
    ]
    proc = subprocess.run(cmd, capture_output=quiet, text=True)
    if proc.returncode != 0:
        # Sphinx keeps its environment even when a warning failed the build, and would not
        # re-read (nor warn about) an unchanged page next time: start the next build afresh.
        shutil.rmtree(output / "_build" / ".doctrees", ignore_errors=True)
        raise RuntimeError(f"jupyter-book build failed:\n{proc.stdout or ''}\n{proc.stderr or ''}")
    # What the notebooks read, as they left it (a live profile writes its tables): the next
    # build with the same key reuses them. Written last, so a failed build is never reused.
    key_file.write_text(execution_key(book_dir, results_root, params))
    html = output / "_build" / "html"
    if not quiet:
        print(f"book built: {html / 'index.html'}")
    return html


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m l2dlib.book", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--profile",
        default=DEFAULT_PROFILE["mog"],
        help=f"profile of the MoG studies (default {DEFAULT_PROFILE['mog']}: the committed tables)",
    )
    parser.add_argument(
        "--cifar-profile",
        help="profile of the committed CIFAR-10 results shown (default: faithful or paper where committed, "
        "else frozen_features)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", help="MoG study seeds (default: the profile's)")
    parser.add_argument(
        "--output", type=Path, default=REPO / "book", help="the HTML goes to OUTPUT/_build/html (default: book/)"
    )
    parser.add_argument("--results-dir", type=Path, default=REPO / "results")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    build(
        profile=args.profile,
        cifar_profile=args.cifar_profile,
        output=args.output,
        results_dir=args.results_dir,
        seeds=args.seeds,
    )
    print(f"total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
