import torch

from l2dlib.data.mog import make_mog


def test_mog_shape_split_and_cluster_sizes():
    d = make_mog(20_000)
    sizes = {s: len(d.y[s]) for s in ("train", "val", "test")}
    n = sum(sizes.values())
    assert 19_996 <= n <= 20_000  # floor() of the mixing weights may drop up to 3 points
    assert sizes["train"] == int(n * 0.7) and sizes["val"] == int(n * 0.15)
    y = torch.cat([d.y[s] for s in ("train", "val", "test")])
    counts = torch.bincount(y).tolist()
    assert counts[0] == counts[1] and counts[2] == counts[3]  # gp splits pairs equally
    assert d.x["train"].shape[1] == 2 and d.num_classes == 4


def test_mog_is_deterministic_and_standardized_on_train():
    a, b = make_mog(2000), make_mog(2000)
    assert a.fingerprint == b.fingerprint
    s = make_mog(2000, standardize=True)
    torch.testing.assert_close(s.x["train"].mean(0), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(s.x["train"].std(0), torch.ones(2), atol=1e-5, rtol=0)
    assert torch.equal(s.y["test"], a.y["test"])
