"""The MoG pages' live panel: absent outside a live kernel, and its button trains what the
cache lacks and redraws."""

from __future__ import annotations

import pytest

from l2dlib import panel, results


def test_the_panel_is_shown_only_in_a_kernel_a_jupyter_server_started(monkeypatch, capsys):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    assert not panel.live()
    panel.show("increasing_experts", "smoke")
    assert capsys.readouterr().out == ""  # papermill's kernels: nothing at all
    monkeypatch.setenv("JPY_SESSION_NAME", "/lab/01_increasing_experts.ipynb")
    assert panel.live()


def test_the_button_trains_the_chosen_grid_and_redraws(tmp_path):
    box = panel.panel("increasing_experts", "smoke", results_dir=tmp_path)
    (grid, methods, button), _ = box.children[0].children, box.children[1]
    grid.value, methods.value = (1, 3), ("softmax",)
    button.click()
    table, _ = results.load_table(tmp_path, "mog", "increasing_experts", "smoke")
    assert sorted(table["num_experts"].unique()) == [1, 3] and set(table["method"]) == {"softmax"}
    with pytest.raises(ValueError, match="not 'specialized_experts'"):
        panel.panel("specialized_experts")
