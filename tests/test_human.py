"""Human experts: the label files' checks, the crowd sampling, the workers, the datasets and
smoke runs of every study on synthetic images and annotators of the same shape."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from l2dlib import human_page, pages
from l2dlib.batch import load_data
from l2dlib.data import crowds, human
from l2dlib.experts import crowd_member, draw_predictions, sample_annotator, worker
from l2dlib.features import fit_split
from l2dlib.profiles import get_profile, registered
from l2dlib.runner import run_studies


def _write_cifar10h(root, counts) -> None:
    path = root / human.CIFAR10H.path
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, counts)


def _write_cifar10n(root, clean, workers) -> None:
    path = root / human.CIFAR10N.path
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"random_label{k + 1}": workers[:, k].astype(np.int8) for k in range(3)}
    np.savez(path, clean_label=clean.astype(np.int8), **arrays)


def _trust(monkeypatch, root, name) -> None:
    """Accept the fake file's md5 as the release's."""
    release = getattr(human, name)
    md5 = hashlib.md5((root / release.path).read_bytes()).hexdigest()
    monkeypatch.setattr(human, name, replace(release, md5=md5))


def test_missing_and_corrupt_label_files_say_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        human.cifar10h_counts(tmp_path)
    message = str(info.value)
    assert str(tmp_path / human.CIFAR10H.path) in message and "CC BY-NC-SA 4.0" in message
    assert human.CIFAR10H.url in message
    _write_cifar10h(tmp_path, np.ones((4, 10), dtype=np.int64))
    with pytest.raises(ValueError, match="md5"):
        human.cifar10h_counts(tmp_path)


def test_cifar10h_must_line_up_with_the_test_images(tmp_path, monkeypatch):
    labels = np.arange(200) % 10
    counts = np.zeros((200, 10), dtype=np.int64)
    counts[np.arange(200), labels] = 40
    counts[:, 3] += 5  # a minority vote everywhere
    _write_cifar10h(tmp_path, counts)
    _trust(monkeypatch, tmp_path, "CIFAR10H")
    index = np.arange(200)
    assert np.array_equal(human.cifar10h_counts(tmp_path, index, labels), counts)
    shuffled = np.random.default_rng(0).permutation(200)
    with pytest.raises(ValueError, match="official order") as info:
        human.cifar10h_counts(tmp_path, shuffled, labels)
    assert "--official-order" in str(info.value)


def test_cifar10n_must_match_the_training_labels_exactly(tmp_path, monkeypatch):
    clean = np.arange(100) % 10
    workers = np.stack([clean, (clean + 1) % 10, clean], axis=1)
    _write_cifar10n(tmp_path, clean, workers)
    _trust(monkeypatch, tmp_path, "CIFAR10N")
    index = np.arange(0, 100, 2)
    assert np.array_equal(human.cifar10n_workers(tmp_path, index, clean[index]), workers)
    wrong = clean[index].copy()
    wrong[0] = (wrong[0] + 1) % 10  # one label off is enough
    with pytest.raises(ValueError, match="CIFAR-10N does not line up"):
        human.cifar10n_workers(tmp_path, index, wrong)


def test_a_random_annotator_is_right_as_often_as_the_counts_say():
    counts = np.array([[3, 1, 0], [0, 5, 5]])
    assert human.crowd_accuracy(counts, np.array([0, 2])) == pytest.approx((3 / 4 + 5 / 10) / 2)
    assert np.array_equal(human.counts_of(np.array([[0, 0, 2], [1, 2, 2]]), 3), [[2, 0, 1], [0, 1, 2]])


def test_crowd_draws_follow_the_counts_and_repeat_bit_for_bit():
    n = 200_000
    counts = torch.tensor([[1, 3, 0, 6], [0, 0, 7, 0]]).repeat(n // 2, 1)
    draws = sample_annotator(counts, torch.Generator().manual_seed(0))
    again = sample_annotator(counts, torch.Generator().manual_seed(0))
    assert torch.equal(draws, again)
    first = torch.bincount(draws[0::2], minlength=4) / (n // 2)
    # the binomial sd at 100,000 draws is at most 0.0016: 0.008 is five of them
    torch.testing.assert_close(first, torch.tensor([0.1, 0.3, 0.0, 0.6]), atol=0.008, rtol=0)
    assert bool((draws[1::2] == 2).all())  # a unanimous image is always labelled so


def test_crowd_members_and_workers_as_experts():
    n, k = 20_000, 10
    g = torch.Generator().manual_seed(1)
    y = torch.randint(k, (n,), generator=g)
    crowd = torch.zeros(n, k, dtype=torch.int64)
    crowd[torch.arange(n), (y + 1) % k] = 50  # the crowd is always wrong
    workers = torch.randint(k, (n, 3), generator=g)
    out = draw_predictions(
        [crowd_member(range(k)), crowd_member(range(k), 1.0), crowd_member((0, 1)), worker(2)],
        y,
        k,
        seed=0,
        split="test",
        crowd=crowd,
        workers=workers,
    )
    assert bool((out[:, 0] == (y + 1) % k).all())  # p = 0: the crowd's label
    assert bool((out[:, 1] == y).all())  # p = 1: the truth
    off = ~torch.isin(y, torch.tensor([0, 1]))
    assert bool((out[~off, 2] == (y[~off] + 1) % k).all())  # a specialist: the crowd on its classes
    assert abs((out[off, 2] == y[off]).float().mean().item() - 1 / k) < 0.01  # a uniform guess elsewhere
    assert torch.equal(out[:, 3], workers[:, 2])  # a worker: the recorded labels
    shifted = draw_predictions([worker(2)], y, k, seed=0, split="shift", crowd=crowd)
    assert bool((shifted[:, 0] == (y + 1) % k).all())  # no recorded workers: a crowd member
    with pytest.raises(ValueError, match="annotator counts"):
        draw_predictions([crowd_member(range(k))], y, k, seed=0, split="test")


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory):
    """Every human-expert study on synthetic images and annotators, saved under the CPU
    profile's name (the page reads those tables)."""
    folder = tmp_path_factory.mktemp("results")
    tables = {}
    for dataset in ("cifar10h", "cifar10n", "cifar10"):
        smoke = get_profile("cifar10h", "smoke")
        prof = replace(smoke, name="frozen_features", dataset=dataset, seeds=(0, 1))
        studies = ["increasing_experts", "expert_dependence", "specialized_experts"]
        studies += ["shifted_crowd"] if dataset == "cifar10n" else []
        js = [1, 2] if dataset != "cifar10h" else [1, 3]
        with registered(prof):
            tables[dataset] = run_studies(
                studies,
                dataset,
                prof,
                methods=["softmax", "ova"],
                num_experts=js,
                expert_ps=[0.2, 0.95],
                results_dir=folder,
                progress=False,
            )
    return folder, tables


def test_the_datasets_use_only_images_the_extractor_has_not_seen(tmp_path):
    prof = get_profile("cifar10n", "smoke")
    features = load_data(replace(prof, dataset="cifar10"), torch.device("cpu"), results_dir=tmp_path)
    data = {d: crowds.crowd_dataset(d, features, synthetic=True) for d in ("cifar10h", "cifar10n")}
    fit, _ = fit_split(256, prof.extractor)  # the synthetic train split has 256 images
    seen = set(fit.tolist())
    pool = torch.cat([data["cifar10n"].index[s] for s in ("train", "val", "test")])
    assert len(pool) == len(features.y["train"]) + len(features.y["val"]) == len(set(pool.tolist()))
    train_official = set(features.index["train"].tolist())
    assert not {i for i in pool.tolist() if i in train_official} & seen
    sizes = [len(data["cifar10n"].y[s]) for s in ("train", "val", "test")]
    assert sizes == [
        int(len(pool) * 0.6),
        int(len(pool) * 0.1),
        len(pool) - int(len(pool) * 0.6) - int(len(pool) * 0.1),
    ]
    assert torch.equal(data["cifar10n"].index["shift"], features.index["test"])
    h = data["cifar10h"]
    assert sorted(torch.cat([h.index[s] for s in ("train", "val", "test")]).tolist()) == list(range(128))
    for s in ("train", "val", "test"):  # the crowd of the cifar10n pool is its three workers
        assert torch.equal(data["cifar10n"].crowd[s].sum(1), torch.full((sizes[("train", "val", "test").index(s)],), 3))


def test_smoke_runs_of_every_human_study(smoke_results):
    folder, tables = smoke_results
    assert {s: len(t) for s, t in tables["cifar10h"].items()} == {
        "increasing_experts": 2 * 2 * (1 + 3),
        "expert_dependence": 2 * 2 * 2 * 4,
        "specialized_experts": 2 * 2 * (1 + 3),
    }
    assert set(tables["cifar10n"]["increasing_experts"]["expert_kind"]) == {"worker"}
    assert set(tables["cifar10h"]["increasing_experts"]["expert_kind"]) == {"crowd"}
    info = json.loads((folder / "cifar10h" / "increasing_experts-frozen_features.json").read_text())
    assert info["human_labels"]["releases"] == []  # synthetic annotators cite no release
    assert 0 < info["human_labels"]["crowd_accuracy"]["all"] <= 1
    with pytest.raises(ValueError, match="J <= 3"):
        run_studies(["increasing_experts"], "cifar10n", get_profile("cifar10n", "smoke"), num_experts=[4])
    with pytest.raises(ValueError, match="cifar10n only"):
        run_studies(["shifted_crowd"], "cifar10h", get_profile("cifar10h", "smoke"))


def test_the_shifted_crowd_judges_the_same_models_with_other_people(smoke_results):
    _, tables = smoke_results
    key = ["method", "seed", "num_experts", "expert"]
    same = tables["cifar10n"]["increasing_experts"].set_index(key).sort_index()
    shifted = tables["cifar10n"]["shifted_crowd"].set_index(key).sort_index()
    assert same.index.equals(shifted.index)
    # trained alike, bit for bit: the same training and validation losses
    assert same["train_loss"].equals(shifted["train_loss"]) and same["val_loss"].equals(shifted["val_loss"])
    assert not same["test_loss"].equals(shifted["test_loss"])  # judged on other images and people


def test_the_page_renders_from_the_tables(smoke_results, tmp_path):
    folder, _ = smoke_results
    blocks = human_page.human_page(folder, tmp_path)
    assert "Softmax ECE of the plain crowd member rises" in blocks["verdicts"]
    assert "random expert above 0.40" not in blocks["verdicts"]  # the paper's level is a random expert's
    for name in ("increasing_experts", "expert_dependence", "specialized_experts", "reliability"):
        assert blocks[name].startswith("```{figure}")
    assert (tmp_path / "human_shift.png").is_file() and "| Softmax | 1 |" in blocks["shift_table"]
    assert "synthetic annotators" in blocks["data"] and "CC BY" not in blocks["data"]  # no release to cite
    assert pages.missing_results("shifted_crowd", "cifar10n", "frozen_features") not in blocks["shift_figure"]
