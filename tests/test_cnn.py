import pytest
import torch

from l2dlib.models import FastResNet, WideResNet


def _num_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_wrn_28_10_has_the_published_parameter_count():
    n = _num_params(WideResNet(depth=28, widen=10, num_outputs=10))
    assert n == 36_479_194  # the paper's table says 36.5M
    assert abs(n - 36.5e6) / 36.5e6 < 0.01


def test_wrn_28_4_forward_shape_and_seeded_init():
    model = WideResNet(depth=28, widen=4, num_outputs=18).eval()
    assert _num_params(model) == 5_851_106  # 5,849,050 with 10 outputs
    x = torch.randn(2, 3, 32, 32)
    assert model(x).shape == (2, 18)
    same, other = WideResNet(16, 1, 12, seed=7), WideResNet(16, 1, 12, seed=8)
    again = WideResNet(16, 1, 12, seed=7)
    assert all(torch.equal(a, b) for a, b in zip(same.parameters(), again.parameters()))
    assert not torch.equal(same.head.weight, other.head.weight)


@pytest.mark.parametrize("depth", [27, 29, 4])
def test_wrn_rejects_bad_depth(depth):
    with pytest.raises(ValueError, match="6n"):
        WideResNet(depth=depth)


def test_fast_resnet_forward_channels_last_and_bf16():
    model = FastResNet(num_outputs=13).eval()
    x = torch.randn(4, 3, 32, 32)
    out = model(x)
    assert out.shape == (4, 13) and out.dtype == torch.float32
    cl = model.to(memory_format=torch.channels_last)
    torch.testing.assert_close(cl(x.contiguous(memory_format=torch.channels_last)), out, rtol=1e-4, atol=1e-4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = cl(x.contiguous(memory_format=torch.channels_last))
    assert low.shape == (4, 13) and torch.isfinite(low).all()
    tiny = WideResNet(depth=10, widen=1, num_outputs=3).to(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert tiny(x.contiguous(memory_format=torch.channels_last)).shape == (4, 3)


def test_one_sgd_step_reduces_the_loss():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 3, 32, 32, generator=g), torch.randint(10, (16,), generator=g)
    model = FastResNet(num_outputs=10, widths=(16, 32, 32))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    with torch.no_grad():
        after = torch.nn.functional.cross_entropy(model(x), y)
    assert after < loss.detach()
