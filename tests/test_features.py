"""The CIFAR-10 CPU profile: the feature cache, heads stacked = alone, and smoke runs of the
three studies on synthetic CIFAR-shaped images with a tiny extractor."""

from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd
import pytest
import torch

from l2dlib import METHODS, claims, features, pages
from l2dlib.__main__ import main
from l2dlib.batch import load_data, make_batches, train_batch
from l2dlib.data.cifar10 import synthetic_cifar10
from l2dlib.features import ExtractorConfig, feature_dataset, features_path, weights_path
from l2dlib.profiles import get_profile
from l2dlib.runner import run_studies
from l2dlib.studies import study_configs

TINY = ExtractorConfig(widths=(8, 16, 16), epochs=1, batch_size=64)


def tiny_profile():
    p = get_profile("cifar10", "frozen_features")
    return replace(
        p,
        synthetic=True,
        seeds=(0,),
        extractor=TINY,
        train=replace(p.train, max_epochs=3, batch_size=64),
        cpu_workers=1,
    )


@pytest.fixture(scope="module")
def images():
    return synthetic_cifar10()


def count_training(monkeypatch) -> list:
    calls = []
    real = features.train_extractor

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(features, "train_extractor", counted)
    return calls


def test_the_key_changes_with_the_settings_and_the_data(images):
    other = synthetic_cifar10(seed=1)
    assert TINY.key(images.fingerprint) == ExtractorConfig(**vars(TINY)).key(images.fingerprint)
    assert TINY.key(images.fingerprint) != replace(TINY, epochs=2).key(images.fingerprint)
    assert TINY.key(images.fingerprint) != TINY.key(other.fingerprint)


def test_the_extractor_trains_on_its_part_of_the_train_split_only(images, monkeypatch):
    seen = []
    real = features.augment
    monkeypatch.setattr(features, "augment", lambda x, g: seen.append(x.clone()) or real(x, g))
    fit, heads = features.fit_split(len(images.y["train"]), TINY)
    _, summary = features.train_extractor(images, TINY, progress=False)
    allowed = features.normalize(images.x["train"][fit])
    for batch in seen:  # every training image is one of the extractor's own
        assert (batch[:, None] == allowed[None]).flatten(2).all(2).any(1).all()
    assert (summary["fit_images"], summary["head_images"]) == (len(fit), len(heads))
    with pytest.raises(ValueError, match="fit_fraction"):
        ExtractorConfig(fit_fraction=1.0)


def test_features_are_trained_once_then_reused_with_the_same_bits(tmp_path, images, monkeypatch):
    calls = count_training(monkeypatch)
    first = feature_dataset(images, TINY, tmp_path, progress=False)
    assert weights_path(tmp_path, TINY, images).is_file() and features_path(tmp_path, TINY, images).is_file()
    second = feature_dataset(images, TINY, tmp_path, progress=False)
    assert calls == [1]
    fit, heads = features.fit_split(len(images.y["train"]), TINY)
    assert len(fit) == int(0.6 * 256) and len(heads) == 256 - len(fit)
    assert sorted(fit.tolist() + heads.tolist()) == list(range(256))  # a partition
    sizes = {"train": len(heads), "val": len(images.y["val"]), "test": len(images.y["test"])}
    for s in ("train", "val", "test"):
        assert torch.equal(first.x[s], second.x[s])
        assert first.x[s].shape == (sizes[s], TINY.widths[2])
    # The heads' train split is the images the extractor did not train on, labels and index along.
    assert torch.equal(first.y["train"], images.y["train"][heads])
    assert torch.equal(first.index["train"], images.index["train"][heads])
    assert torch.equal(first.y["test"], images.y["test"])
    assert first.fingerprint == second.fingerprint
    # Standardised by the train split: mean 0 and std 1 per feature (up to float32 rounding).
    assert first.x["train"].mean(0).abs().max() < 1e-4
    changed = replace(TINY, epochs=2)
    other = feature_dataset(images, changed, tmp_path, progress=False)
    assert calls == [1, 1] and other.fingerprint != first.fingerprint


def test_features_equal_the_extractor_applied_by_hand(tmp_path, images):
    data = feature_dataset(images, TINY, tmp_path, progress=False)
    net = features.FastResNet(10, widths=TINY.widths)
    net.load_state_dict(torch.load(weights_path(tmp_path, TINY, images), weights_only=True)["state"])
    net.eval()
    _, heads = features.fit_split(len(images.y["train"]), TINY)

    def by_hand(x):  # the mean embedding of each image and its mirror image
        x = features.normalize(x)
        return (net.embed(x) + net.embed(torch.flip(x, dims=[3]))) / 2

    with torch.no_grad():
        raw = by_hand(images.x["test"])
        train = by_hand(images.x["train"][heads]).double()
    expect = (raw.double() - train.mean(0)) / train.std(0, correction=0)
    torch.testing.assert_close(data.x["test"].double(), expect, atol=1e-4, rtol=1e-4)


def test_a_corrupt_features_file_is_recomputed_without_retraining(tmp_path, images, monkeypatch):
    first = feature_dataset(images, TINY, tmp_path, progress=False)
    calls = count_training(monkeypatch)
    path = features_path(tmp_path, TINY, images)
    path.write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match=str(path)):
        again = feature_dataset(images, TINY, tmp_path, progress=False)
    assert calls == [] and torch.equal(first.x["val"], again.x["val"])


def test_features_of_other_weights_and_corrupt_weights_are_recomputed(tmp_path, images, monkeypatch):
    feature_dataset(images, TINY, tmp_path, progress=False)
    calls = count_training(monkeypatch)
    wpath = weights_path(tmp_path, TINY, images)
    wpath.write_bytes(b"\x00" * 10)
    with pytest.warns(UserWarning) as caught:
        feature_dataset(images, TINY, tmp_path, progress=False)
    messages = " ".join(str(w.message) for w in caught)
    assert str(wpath) in messages and str(features_path(tmp_path, TINY, images)) in messages
    assert calls == [1]


def test_heads_stacked_equal_heads_alone_bit_for_bit(tmp_path):
    prof = tiny_profile()
    data = load_data(prof, torch.device("cpu"), results_dir=tmp_path)
    cfgs = study_configs("increasing_experts", "cifar10", prof.name, seeds=[0, 1], num_experts=[1, 3])
    (stack,) = make_batches(cfgs, replace(prof, max_models_per_batch=len(cfgs)), 10)
    together = train_batch(stack, data, prof)
    for m, cfg in enumerate(stack):
        alone = train_batch([cfg], data, prof)
        assert alone.evaluated[0] == together.evaluated[m]  # rows, bins and points, exact floats


def test_smoke_runs_of_the_three_studies(tmp_path):
    prof = tiny_profile()
    tables = run_studies(
        ["increasing_experts", "expert_dependence", "specialized_experts"],
        "cifar10",
        prof,
        num_experts=[1, 2],
        expert_ps=[0.2, 0.95],
        results_dir=tmp_path,
        progress=False,
    )
    assert {s: len(t) for s, t in tables.items()} == {
        "increasing_experts": len(METHODS) * (1 + 2),
        "expert_dependence": len(METHODS) * 2 * 4,
        "specialized_experts": len(METHODS) * (1 + 2),
    }
    for study, table in tables.items():
        assert table["data_label"].str.contains("frozen CNN features").all()
        assert table["ece"].between(0, 1).all() and table["system_accuracy"].between(0, 1).all()
        info = json.loads((tmp_path / "cifar10" / f"{study}-frozen_features.json").read_text())
        assert info["settings"]["extractor"]["widths"] == [8, 16, 16]
        assert info["settings"]["model_options"] == {"hidden": [128]}
    # The page's choice of profile, and its claim table, come from these tables.
    assert pages.shown_cifar_profile(tmp_path, pages.CIFAR_STUDIES) == "frozen_features"
    judged = pages.regimes(tmp_path, [])
    assert list(judged) == [("cifar10", "frozen_features")]
    assert "frozen CNN features" in claims.regime_name("cifar10", "frozen_features")


def test_gpu_results_take_precedence_where_they_exist(monkeypatch):
    committed = {"frozen_features"}
    monkeypatch.setattr(
        "l2dlib.pages.find_table",
        lambda results_dir, dataset, study, profile: ("table", {}) if profile in committed else (None, None),
    )
    assert pages.shown_cifar_profile(None, pages.CIFAR_STUDIES) == "frozen_features"
    committed.add("paper")
    assert pages.shown_cifar_profile(None, pages.CIFAR_STUDIES) == "paper"
    committed.add("faithful")
    assert pages.shown_cifar_profile(None, pages.CIFAR_STUDIES) == "faithful"
    assert pages.shown_cifar_profile(None, pages.CIFAR_STUDIES, "frozen_features") == "frozen_features"
    committed.clear()  # nothing committed: the CPU profile, whose pages then say how to make it
    assert pages.shown_cifar_profile(None, pages.CIFAR_STUDIES) == "frozen_features"


def test_cifar_claims_against_hand_computed_numbers():
    rows = []
    ece = {
        ("softmax", 1): [0.10, 0.12],
        ("softmax", 2): [0.07, 0.11],
        ("ova", 1): [0.05, 0.05],
        ("ova", 2): [0.05, 0.06],
    }
    for (method, j), values in ece.items():
        for seed, v in enumerate(values):
            for _ in range(j):
                rows.append(
                    dict(
                        method=method,
                        seed=seed,
                        num_experts=j,
                        expert_p=None,
                        ece=v,
                        system_accuracy=0.9,
                        expert_kind="oracle",
                        data_seed=None,
                    )
                )
    inc = pd.DataFrame(rows)
    table = claims.judge_all("cifar10", {"increasing_experts": inc}).set_index("key")
    dip = table.loc["cifar10_dip"]  # ECE(1) - ECE(2): the paper's dip is positive
    assert dip["estimate"] == pytest.approx(((0.10 - 0.07) + (0.12 - 0.11)) / 2)
    diffs = [0.03, 0.01]  # t interval with 1 degree of freedom: 12.706 * sd / sqrt(2)
    half = 12.706 * pd.Series(diffs).std() / 2**0.5
    assert dip["95% interval"] == pytest.approx((0.02 - half, 0.02 + half), abs=1e-3)
    assert dip["verdict"] == "inconclusive"
    rise = table.loc["cifar10_softmax_rises", "estimate"]  # slope -0.02 over J = 1..2
    assert rise == pytest.approx(-0.02)


def test_the_features_command_without_data_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("l2dlib.data.cifar10.download_cifar10", lambda d: (_ for _ in ()).throw(OSError("offline")))
    assert main(["features", "--data-dir", str(tmp_path), "--results-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: CIFAR-10 not found") and "to_batches.py" in err
