"""The CIFAR-10 profile cpu_end_to_end: the frozen body's outputs against the extractor
applied by hand, the trained tail's starting point, the training accuracy each row records,
and one configuration's bits in a worker and in this process, on synthetic images."""

from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd
import pytest
import torch

from l2dlib import aggregate, answers_page, batch, features, pages
from l2dlib.data.cifar10 import synthetic_cifar10
from l2dlib.features import ExtractorConfig, body_dataset, body_path, weights_path
from l2dlib.models import FastTail
from l2dlib.profiles import get_profile
from l2dlib.runner import run_studies
from l2dlib.studies import study_configs

TINY = ExtractorConfig(widths=(8, 16, 16), epochs=1, batch_size=64)


def tiny_profile(**kw):
    p = get_profile("cifar10", "cpu_end_to_end")
    settings = dict(synthetic=True, seeds=(0,), extractor=TINY, cpu_workers=1, num_experts=(1, 2), expert_ps=(0.6,))
    return replace(p, train=replace(p.train, max_epochs=2, batch_size=64), **settings | kw)


@pytest.fixture(scope="module")
def images():
    return synthetic_cifar10()


def extractor(folder, images) -> features.FastResNet:
    net = features.FastResNet(10, widths=TINY.widths)
    net.load_state_dict(torch.load(weights_path(folder, TINY, images), weights_only=True)["state"])
    return net.eval()


def test_the_body_is_the_extractors_first_layers_and_the_tail_starts_as_its_last_group(tmp_path, images):
    data = body_dataset(images, TINY, tmp_path, progress=False)
    net = extractor(tmp_path, images)
    _, heads = features.fit_split(len(images.y["train"]), TINY)
    with torch.no_grad():  # by hand: the stem and two groups on the normalised images
        for split, x in (("train", images.x["train"][heads]), ("test", images.x["test"])):
            h = features.normalize(x)
            h = net.groups[1](net.groups[0](net.stem(h)))
            torch.testing.assert_close(data.x[split], h, atol=1e-5, rtol=1e-5)
        assert torch.equal(data.y["train"], images.y["train"][heads])
        tail = FastTail(12, widths=TINY.widths, group_state=data.tail_state, seed=3).eval()
        x = data.x["val"][:32]
        assert torch.equal(tail.group(x), net.groups[2](x))  # the extractor's last group, as it was
        pooled = net.groups[2](x).amax(dim=(2, 3))
        torch.testing.assert_close(tail(x), (pooled @ tail.head.weight.T + tail.head.bias) * 0.125)
    # Cached: read back with the same bits; a corrupt file is recomputed with a warning.
    assert torch.equal(body_dataset(images, TINY, tmp_path, progress=False).x["test"], data.x["test"])
    body_path(tmp_path, TINY, images).write_bytes(b"junk")
    with pytest.warns(UserWarning, match="body"):
        again = body_dataset(images, TINY, tmp_path, progress=False)
    assert torch.equal(again.x["test"], data.x["test"]) and data.fingerprint == again.fingerprint


def test_a_run_covers_the_profiles_grid_and_records_the_training_accuracy(tmp_path, monkeypatch):
    seen = []
    real = batch.predict

    def recording(model, x, **kw):
        out = real(model, x, **kw)
        seen.append((x, out))
        return out

    monkeypatch.setattr(batch, "predict", recording)
    studies = ["increasing_experts", "expert_dependence"]
    methods = ["softmax", "ova"]
    tables = run_studies(studies, "cifar10", tiny_profile(), methods=methods, results_dir=tmp_path, progress=False)
    inc, dep = tables["increasing_experts"], tables["expert_dependence"]
    # The profile's grid: J in (1, 2), p in (0.6,); one seed.
    assert sorted(inc.groupby(["method", "num_experts"]).size().items()) == [
        (("ova", 1), 1),
        (("ova", 2), 2),
        (("softmax", 1), 1),
        (("softmax", 2), 2),
    ]
    assert set(dep["method"]) == {"softmax", "ova"} and set(dep["expert_p"]) == {0.6}
    assert inc["data_label"].str.contains("frozen CNN body").all()
    # The training accuracy: the restored model's classifier on its own training split, by hand
    # from the logits the batch computed on that split (the first prediction after training).
    n_train = len(load_body(tmp_path).y["train"])
    train_calls = [(x, out) for x, out in seen if len(x) == n_train]
    assert len(train_calls) == 6  # one per configuration
    y = load_body(tmp_path).y["train"]
    by_hand = sorted(round((out[0, :, :10].argmax(-1) == y).double().mean().item(), 12) for _, out in train_calls)
    recorded = sorted(inc.groupby("config_key")["train_classifier_accuracy"].first().round(12).tolist())
    recorded += sorted(dep.groupby("config_key")["train_classifier_accuracy"].first().round(12).tolist())
    assert sorted(recorded) == by_hand
    # The regime joins the claim tables beside the frozen features where its tables exist.
    assert ("cifar10", "cpu_end_to_end") in pages.regimes(tmp_path, [])


def load_body(folder):
    return body_dataset(synthetic_cifar10(), TINY, folder / "cifar10", progress=False)


def test_a_configuration_in_a_worker_equals_it_in_this_process_bit_for_bit(tmp_path):
    prof = tiny_profile(cpu_workers=2, seeds=(0, 1))
    # Two configurations on two single-threaded workers ...
    there = run_studies(
        ["increasing_experts"],
        "cifar10",
        prof,
        methods=["softmax"],
        num_experts=[2],
        results_dir=tmp_path,
        progress=False,
    )
    there = there["increasing_experts"]
    # ... and the first again here, in this process, on the frozen body the run cached.
    (cfg,) = [
        c
        for c in study_configs(
            "increasing_experts", "cifar10", prof.name, seeds=[0], methods=["softmax"], num_experts=[2]
        )
    ]
    data = batch.load_data(prof, torch.device("cpu"), results_dir=tmp_path)
    here = batch.train_batch([cfg], data, prof)
    rows = there[there["seed"] == 0].sort_values("expert")
    assert rows["ece"].tolist() == [r["ece"] for r in here.evaluated[0][0]]
    assert rows["test_loss"].tolist() == [r["test_loss"] for r in here.evaluated[0][0]]
    assert rows["train_classifier_accuracy"].iloc[0] == here.train_accuracies[0]
    assert rows["best_epoch"].iloc[0] == here.best_epochs[0]


def test_the_train_test_gap_against_a_hand_computation():
    rows = []
    for key, method, train_acc, test_acc, train_loss, test_loss in (
        ("a", "softmax", 0.9, 0.8, 1.0, 1.5),
        ("b", "softmax", 0.7, 0.6, 2.0, 2.5),
        ("c", "ova", 0.95, 0.85, 0.5, 0.75),
    ):
        for expert in (0, 1):  # a configuration's rows share these; it counts once
            rows.append(
                dict(config_key=key, method=method, seed=0, expert=expert, train_classifier_accuracy=train_acc)
                | dict(classifier_accuracy=test_acc, train_loss=train_loss, test_loss=test_loss)
            )
    gap = aggregate.train_test_gap(pd.DataFrame(rows))
    assert list(gap.index) == ["softmax", "ova"] and gap.loc["softmax", "configurations"] == 2
    assert gap.loc["softmax", "accuracy_gap"] == pytest.approx(0.8 - 0.7)
    assert gap.loc["softmax", "loss_gap"] == pytest.approx(2.0 - 1.5)
    assert gap.loc["ova", "test_accuracy"] == 0.85
    older = aggregate.train_test_gap(pd.DataFrame(rows).drop(columns="train_classifier_accuracy"))
    assert older["train_accuracy"].isna().all() and older.loc["ova", "loss_gap"] == 0.25


def test_a_regimes_cost_counts_a_run_of_several_studies_once(tmp_path):
    folder = tmp_path / "cifar10"
    folder.mkdir()
    shared = {"created": "t0", "command": "run all", "wall_seconds": 300.0}
    for study, models, runs in (
        ("increasing_experts", 20, [shared | {"num_computed": 20}]),
        (
            "expert_dependence",
            10,
            [shared | {"num_computed": 5}, {"created": "t1", "command": "x", "wall_seconds": 60.0, "num_computed": 5}],
        ),
    ):
        info = {"study": study, "num_configs": models, "device": "cpu", "runs": runs}
        (folder / f"{study}-frozen_features.json").write_text(json.dumps(info))
    costs = pages.cpu_costs(tmp_path).set_index("study")
    per_model = (300 + 60) / 30  # two runs, 30 models trained
    assert costs.loc["increasing_experts", "wall s per model"] == per_model
    assert costs.loc["expert_dependence", "minutes"] == round(10 * per_model / 60, 1)
    assert set(costs["regime"]) == {"CIFAR-10, CPU features"}


def test_the_cap_sentence_against_a_hand_computation():
    rows = []
    for j, above, capped, uncapped, ova in ((1, 0.1, 0.05, 0.15, 0.01), (2, 0.3, 0.06, 0.26, 0.02)):
        rows.append(
            dict(method="softmax", num_experts=j, frac_estimates_above_1=above, ece=capped, ece_uncapped=uncapped)
        )
        rows.append(dict(method="ova", num_experts=j, frac_estimates_above_1=0.0, ece=ova, ece_uncapped=ova))
    text = pages.cap_sentence(pd.DataFrame(rows))
    # gaps: J = 1 (0.15 - 0.01) / (0.05 - 0.01) = 3.5; J = 2 (0.26 - 0.02) / (0.06 - 0.02) = 6.0
    assert text.startswith("Between 10.0% and 30.0% of the softmax estimates exceed 1")
    assert "is 3.5 to 6.0 times the capped gap" in text


def test_the_stopping_sentence_reads_each_methods_restored_epochs():
    rows = [
        dict(config_key=f"{m}{j}{s}", method=m, num_experts=j, best_epoch=e, expert=0)
        for m, j, s, e in (
            ("softmax", 1, 0, 11),
            ("softmax", 1, 1, 12),
            ("softmax", 8, 0, 12),
            ("ova", 1, 0, 11),
            ("ova", 8, 0, 4),
        )
    ]
    loaded = {("cifar10", "cpu_end_to_end", "increasing_experts"): (pd.DataFrame(rows), {}), "cifar": "frozen_features"}
    text = answers_page.stopping_sentence(loaded)
    assert text.startswith("In CIFAR-10, CPU end to end, early stopping restores")
    assert "Softmax 11-12 at J = 1, 12-12 at J = 8; OvA 11-11 at J = 1, 4-4 at J = 8." in text
    assert answers_page.stopping_sentence({"cifar": "frozen_features"}) == ""
