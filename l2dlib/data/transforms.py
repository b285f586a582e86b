"""Image transforms as batched tensor work on the data's device (no DataLoader, no
torchvision): :func:`normalize` turns uint8 images into standardised floats, :func:`augment`
applies random 4-pixel-padded crops and horizontal flips to a whole batch with one gather."""

from __future__ import annotations

import functools

import torch
from torch import Tensor

# Per-channel mean and std of the training images in 0..255 units (the values of the
# WideResNet reference code; 0.4914, 0.4822, 0.4465 and 0.2470, 0.2435, 0.2616 on [0, 1]).
MEAN_255 = (125.3, 123.0, 113.9)
STD_255 = (63.0, 62.1, 66.7)
PAD = 4  # random-crop padding, pixels


def normalize(x: Tensor) -> Tensor:
    """Standardise images per channel: uint8 (or 0..255 float) [B, 3, H, W] -> float32
    [B, 3, H, W] with the CIFAR-10 training mean and std, on x's device."""
    mean, inv_std = _channel_stats(x.device)
    return (x.float() - mean) * inv_std


def augment(x: Tensor, generator: torch.Generator) -> Tensor:
    """Random crop with 4-pixel zero padding and random horizontal flip, per image.

    Parameters
    ----------
    x : float [B, C, H, W], on the same device as ``generator``.
    generator : draws the crop offsets (uniform in 0..8 per axis) and flips (p = 1/2).

    Returns
    -------
    float [B, C, H, W] in x's memory format: ``pad(x)[b, :, dy:dy+H, dx:dx+W]``, reversed
    along W where flipped. One gather for the whole batch; padding enters as zeros.
    """
    b, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (PAD, PAD, PAD, PAD))
    dy, dx = torch.randint(0, 2 * PAD + 1, (2, b, 1), generator=generator, device=x.device)
    flip = torch.rand(b, 1, generator=generator, device=x.device) < 0.5
    cols = torch.arange(w, device=x.device)
    rows = dy + torch.arange(h, device=x.device)  # [B, H]
    cols = dx + torch.where(flip, cols.flip(0), cols)  # [B, W]; a flip is reversed columns
    # Advanced indices separated by a slice go first: [B, H, W, C], i.e. channels_last strides.
    out = padded[torch.arange(b, device=x.device)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    out = out.permute(0, 3, 1, 2)
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    return out.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


@functools.cache
def _channel_stats(device: torch.device) -> tuple[Tensor, Tensor]:
    # Cached per device: no host-to-device copy per batch.
    mean = torch.tensor(MEAN_255, device=device).view(1, 3, 1, 1)
    inv_std = 1.0 / torch.tensor(STD_255, device=device).view(1, 3, 1, 1)
    return mean, inv_std
