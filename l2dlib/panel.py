"""A live panel for the MoG study pages: pick the grid (J or p) and the methods, and redraw
the study's figure from the cache, training only what is missing (with a progress bar).

It is shown only in a kernel that a Jupyter server started (``make lab``): executed by
papermill, as the book is, :func:`show` displays nothing, so the static pages hold no
widget and no widget state.
"""

from __future__ import annotations

import os

from . import METHODS
from .studies import AXES, DEFAULT_EXPERT_PS

GRIDS = {
    "increasing_experts": tuple(range(1, 9)),
    "authors_experts": tuple(range(1, 9)),
    "expert_dependence": DEFAULT_EXPERT_PS,
}
LETTERS = {"increasing_experts": "ab", "authors_experts": "ab", "expert_dependence": "c"}


def live() -> bool:
    """Whether this kernel was started by a Jupyter server (which sets ``JPY_SESSION_NAME``
    for it); False under papermill and in plain Python."""
    return bool(os.environ.get("JPY_SESSION_NAME"))


def panel(study: str, profile: str = "quick", results_dir=None):
    """The widgets (an ipywidgets ``VBox``): the grid's values, the methods, a button that
    trains what the cache lacks and redraws the figure below it."""
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import clear_output, display

    from . import pages, plots

    if study not in GRIDS:
        raise ValueError(f"the panel draws {', '.join(GRIDS)} (MoG), not {study!r}")
    axis = AXES[study]
    grid = w.SelectMultiple(options=GRIDS[study], value=GRIDS[study], description=axis.symbol, rows=8)
    methods = w.SelectMultiple(options=METHODS, value=("softmax", "ova"), description="methods", rows=len(METHODS))
    button = w.Button(description="Train what is missing and redraw", layout=w.Layout(width="auto"))
    out = w.Output()

    def redraw(_=None) -> None:
        with out:
            clear_output(wait=True)
            if not grid.value or not methods.value:
                print(f"Pick at least one value of {axis.symbol} and one method.")
                return
            table, info = pages.study_table(
                study,
                "mog",
                profile,
                methods=list(methods.value),
                results_dir=results_dir,
                progress=True,
                **{axis.option: sorted(grid.value)},
            )
            fig = plots.study_figure(study, table, letters=LETTERS[study], label=pages.data_title(info, "mog", profile))
            display(fig)
            plt.close(fig)

    button.on_click(redraw)
    return w.VBox([w.HBox([grid, methods, button]), out])


def show(study: str, profile: str = "quick", results_dir=None) -> None:
    """Display :func:`panel` in a live kernel; nothing anywhere else."""
    if live():
        from IPython.display import display

        display(panel(study, profile, results_dir))
