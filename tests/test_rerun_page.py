"""The re-run page's commands: every l2dlib one parsed as written and every run executed
in a smoke form (profile smoke, a small grid, a temporary results folder), one figure
remade from nothing by the commands of its "Remake this figure" box, and the rest named
with the reason this file does not run them."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from l2dlib import remake
from l2dlib.__main__ import build_parser, main

REPO = Path(__file__).resolve().parent.parent
# Commands not run by this file: make book and make test (CI runs both, the suite builds the
# book), make figure (its commands are the remake boxes', one run below), make lab (an
# interactive server) and the offline data's converter (a script beside the data, not ours).
# The l2dlib commands are all parsed; the runs, and the features command on fake CIFAR-10
# files with a one-epoch extractor, are executed.
RUN_ELSEWHERE = (
    "make book",
    "make test",
    "make lab",
    "make figure",
    "python ../shared/data/cifar10-jpeg/to_batches.py",
)


def page_commands() -> list[str]:
    """The shell commands of the page's bash blocks (continuations joined, comments cut)."""
    text = (REPO / "book" / "rerun.md").read_text()
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                out.append(" ".join(line.split()))
    return out


L2DLIB = [c for c in page_commands() if c.startswith("python -m l2dlib ")]


def test_every_command_on_the_page_is_run_by_a_test():
    commands = page_commands()
    assert len(commands) >= 10
    unknown = [c for c in commands if not c.startswith(RUN_ELSEWHERE) and c not in L2DLIB]
    assert not unknown, f"commands no test runs: {unknown}"


@pytest.mark.parametrize("command", L2DLIB)
def test_each_l2dlib_command_parses_as_written(command):
    args = shlex.split(command)[3:]
    if "--help" in args:
        with pytest.raises(SystemExit) as info:
            build_parser().parse_args(args)
        assert info.value.code == 0
    else:
        build_parser().parse_args(args)


def smoke_form(args: list[str], results: Path) -> list[str]:
    """The command on the smoke profile and a small grid, without the data, device and
    cluster options that need files or hardware a test machine lacks."""
    drop = {"--data-dir", "--device", "--executor", "--partition", "--time-min", "--results-dir", "--profile"}
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
            continue
        if a in drop:
            skip = True
            continue
        out.append(a)
    if "--seeds" in out:  # one seed is enough
        i = out.index("--seeds")
        j = i + 1
        while j < len(out) and not out[j].startswith("--"):
            j += 1
        out[i:j] = ["--seeds", "0"]
    out += ["--profile", "smoke", "--results-dir", str(results), "--quiet", "--methods", "softmax", "ova"]
    study = out[1]
    if "--num-experts" not in out and study in ("all", "increasing_experts", "specialized_experts"):
        out += ["--num-experts", "1", "2"]
    if "--expert-p" not in out and study in ("all", "expert_dependence"):
        out += ["--expert-p", "0.5"]
    return out


RUNS = [c for c in L2DLIB if shlex.split(c)[3] == "run" and "--help" not in c]


@pytest.mark.slow
@pytest.mark.parametrize("command", RUNS)
def test_each_run_command_runs_in_smoke_form(command, tmp_path, monkeypatch):
    monkeypatch.setenv("L2D_RESULTS_DIR", str(tmp_path))
    args = smoke_form(shlex.split(command)[3:], tmp_path)
    assert main(args) == 0, args


FEATURES = [c for c in L2DLIB if shlex.split(c)[3] == "features"]


@pytest.mark.filterwarnings("ignore:the CIFAR-10 files:UserWarning")
@pytest.mark.parametrize("command", FEATURES)
def test_the_features_command_runs_in_smoke_form(command, tmp_path, monkeypatch, write_fake_cifar10, capsys):
    """As written, on fake CIFAR-10 files (300 images per batch) and a one-epoch extractor of
    small widths: it trains the extractor, caches every split's features and says where."""
    import dataclasses

    from l2dlib import profiles
    from l2dlib.data import cifar10
    from l2dlib.features import ExtractorConfig

    write_fake_cifar10(tmp_path / "data", 300)
    monkeypatch.setattr(cifar10, "download_cifar10", lambda *a, **k: pytest.fail("no network in tests"))
    real = profiles.get_profile
    tiny = ExtractorConfig(widths=(8, 8, 8), epochs=1, batch_size=64)
    monkeypatch.setattr(profiles, "get_profile", lambda d, p: dataclasses.replace(real(d, p), extractor=tiny))
    args = shlex.split(command)[3:]
    args[args.index("--data-dir") + 1] = str(tmp_path / "data")
    assert main([*args, "--results-dir", str(tmp_path / "results"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "8 features per image" in out and "extractor test accuracy" in out
    folder = tmp_path / "results" / "cifar10"
    assert len(list(folder.glob("extractor-*.pt"))) == 1 and list((folder / "cache").glob("features-*.pt"))


@pytest.mark.slow
def test_the_remake_box_of_figure_3_makes_it(tmp_path):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    folder = os.path.relpath(tmp_path / "remake", REPO)
    script = " && ".join(remake.commands("3", folder))
    subprocess.run(["bash", "-c", script], cwd=REPO, env=env, check=True, capture_output=True, timeout=300)
    assert (tmp_path / "remake" / "figure3_mog.png").stat().st_size > 10_000
    assert (tmp_path / "remake" / "00_mog_dataset.ipynb").is_file()


def test_every_remake_box_names_its_figure_and_a_known_notebook():
    for fig in remake.FIGURES:
        r = remake.REMAKES.get(fig) or remake.REDRAWS[fig]
        assert (REPO / "book" / r.notebook).is_file()
        box = remake.box_markdown(fig)
        assert box.startswith(":::{dropdown} Remake this figure") and f"make figure FIG={fig}" in box
        assert all(c in box for c in remake.commands(fig))
    for fig, r in remake.REDRAWS.items():  # each page writes the figures it names under figures_dir
        source = (REPO / "book" / r.notebook).read_text() + Path(remake.__file__).with_name("pages.py").read_text()
        source += "".join(Path(remake.__file__).with_name(m).read_text() for m in ("human_page.py", "answers_page.py"))
        assert all(png.removesuffix(".png") in source for png in r.pngs), fig
        assert "drawn from the committed tables" in remake.box_markdown(fig)
    with pytest.raises(ValueError, match="unknown figure"):
        remake.commands("9z")
