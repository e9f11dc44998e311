"""Data augmentation: each step every member trains on x' = T_θ(x), θ drawn afresh per batch, example and member.

Signals: circular shift, amplitude scale, frequency-band gain (rfft → gain on a random band of bins → irfft);
images: horizontal flip, translation, rotation, Gaussian blur. UDL 9.3.8 (augmentation) and notebook 9.5, whose
MNIST-1D recipe is a circular shift plus an amplitude scale; the band gain is the audio trick of
Park et al. 2019 (SpecAugment) / Salamon & Bello 2017, done on the Fourier coefficients of the 1-D signal.
Two signal ops run only when listed: slope (add a linear ramp) and offset (add a constant), the views of
the MNIST-1D repo's SimCLR example (used by `ssl_contrastive`).

Each op is a pure function of the batch and explicit per-example parameters, the identity at zero
strength; the hook draws those parameters from `self.streams`, so every member sees its own draws.
With `ops: auto` the data says which ops keep its labels (`Data.augment_ops`: no flip for digits, whose
mirror image is another symbol; flip and translation for CIFAR-10), else its modality's defaults;
tabular data has none, so augment does not apply to it.
Augmentation touches only training batches: the trainer evaluates (train metrics included) on clean data.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from regbench.config import ConfigError, check_choice, check_number
from regbench.data.base import Data
from regbench.trainer.hooks import NotApplicable, Regularizer
from regbench.trainer.streams import Streams

SIGNAL_OPS = ("shift", "scale", "band_gain")
IMAGE_OPS = ("flip", "translate", "rotate", "blur")
# Signal ops that run only when listed in `ops` (the contrastive views' ramp and level changes).
SIGNAL_EXTRA_OPS = ("slope", "offset")
ALLOWED_OPS = {"signal": SIGNAL_OPS + SIGNAL_EXTRA_OPS, "image": IMAGE_OPS}   # the ops each modality can take
# ops: auto on data that names no ops of its own: an image of unknown kind is not mirrored (a flip turns
# a 2 or a letter into another symbol); a dataset whose labels survive a mirror says so (Data.augment_ops)
DEFAULT_OPS = {"signal": SIGNAL_OPS, "image": ("translate", "rotate", "blur")}


def per_example(values: torch.Tensor, x: torch.Tensor, lead: int = 2) -> torch.Tensor:
    """(P, B) parameters reshaped to broadcast against x: (P, B, 1, ..., 1)."""
    return values.reshape(*values.shape[:lead], *([1] * (x.dim() - lead)))


# ---- signals: x (P, B, L) or (P, B, C, L); parameters (P, B) --------------------------------------

def shift_signal(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Circular shift of the last axis by `shifts` (integer tensor, (P, B)) samples: x'[t] = x[t - s mod L]."""
    L = x.shape[-1]
    index = (torch.arange(L, device=x.device) - per_example(shifts, x)) % L  # (P, B, 1.., L)
    return x.gather(-1, index.expand_as(x))


def scale_signal(x: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """Amplitude scale: x' = factor · x, one factor per example ((P, B))."""
    return x * per_example(factors, x)


def band_gain(x: torch.Tensor, start: torch.Tensor, width: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
    """Multiply rfft bins [start, start + width) of the last axis by `gain` ((P, B) each), then irfft back.

    Bins outside the band are untouched, so the signal changes only in the chosen frequencies.
    """
    L = x.shape[-1]
    spectrum = torch.fft.rfft(x, dim=-1)                                  # (P, B, .., L//2 + 1)
    bins = torch.arange(spectrum.shape[-1], device=x.device)
    lo = per_example(start, x)
    inside = (bins >= lo) & (bins < lo + per_example(width, x))           # (P, B, 1.., bins)
    factor = torch.where(inside, per_example(gain, x), torch.ones_like(per_example(gain, x)))
    return torch.fft.irfft(spectrum * factor, n=L, dim=-1)


def slope_signal(x: torch.Tensor, slopes: torch.Tensor) -> torch.Tensor:
    """Add a linear ramp along the last axis: x'[t] = x[t] + slope · (t / (L - 1) − 1/2), one slope per
    example ((P, B)); the ramp rises by `slope` over the signal and is 0 at its centre."""
    L = x.shape[-1]
    ramp = torch.linspace(-0.5, 0.5, L, device=x.device, dtype=x.dtype)   # (L,)
    return x + per_example(slopes, x) * ramp


def offset_signal(x: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Add a constant level: x' = x + offset, one offset per example ((P, B))."""
    return x + per_example(offsets, x)


# ---- images: x (P, B, C, H, W) or (P, B, H, W); parameters (P, B) --------------------------------

def flip_image(x: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Mirror the width axis where `flip` ((P, B) bool) is set."""
    return torch.where(per_example(flip, x), x.flip(-1), x)


def translate_image(x: torch.Tensor, down: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """Move each image by whole pixels, `down` rows and `right` columns ((P, B) integer tensors), zeros
    moving in at the edges: x'[i, j] = x[i - down, j - right] (a random crop of a zero-padded image)."""
    H, W = x.shape[-2], x.shape[-1]
    rows = torch.arange(H, device=x.device).reshape(H, 1) - per_example(down, x)    # (P, B, 1.., H, 1)
    cols = torch.arange(W, device=x.device) - per_example(right, x)                 # (P, B, 1.., 1, W)
    inside = (rows >= 0) & (rows < H) & (cols >= 0) & (cols < W)                     # (P, B, 1.., H, W)
    moved = x.gather(-2, rows.clamp(0, H - 1).expand_as(x)).gather(-1, cols.clamp(0, W - 1).expand_as(x))
    return torch.where(inside, moved, torch.zeros_like(moved))


def rotate_image(x: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Rotate each image about its centre by `degrees` ((P, B), counter-clockwise as displayed);
    bilinear, zeros outside. affine_grid + grid_sample over all P·B images in one call."""
    P, B, H, W = x.shape[0], x.shape[1], x.shape[-2], x.shape[-1]
    images = x.reshape(P * B, -1, H, W)                                   # (P·B, C, H, W)
    theta = torch.deg2rad(degrees.reshape(P * B).to(x.dtype))
    cos, sin = torch.cos(theta), torch.sin(theta)
    zero = torch.zeros_like(cos)
    # grid_sample maps output (x, y) to input coordinates; y points down, so this rotates counter-clockwise.
    affine = torch.stack([torch.stack([cos, -sin, zero], -1),
                          torch.stack([sin, cos, zero], -1)], -2)         # (P·B, 2, 3)
    grid = F.affine_grid(affine, list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.reshape(x.shape)


def gaussian_weights(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """Normalized 1-D Gaussian taps at offsets -radius..radius for each sigma: (*sigma.shape, 2r+1).
    sigma 0 gives the unit impulse (the identity)."""
    offsets = torch.arange(-radius, radius + 1, device=sigma.device, dtype=sigma.dtype)
    s = sigma.clamp_min(1e-3).unsqueeze(-1)  # exp(-1/(2e-6)) underflows to 0: only the centre tap stays
    taps = torch.exp(-offsets.pow(2) / (2 * s.pow(2)))
    return taps / taps.sum(-1, keepdim=True)


def blur_image(x: torch.Tensor, sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """Separable Gaussian blur with one sigma per image ((P, B)); edges replicated, so a constant image
    stays constant. `radius` (a Python int, fixed by the largest sigma) sets the kernel size 2r+1."""
    if radius == 0:
        return x
    P, B, H, W = x.shape[0], x.shape[1], x.shape[-2], x.shape[-1]
    images = x.reshape(P * B, -1, H, W)                                   # (P·B, C, H, W)
    taps = gaussian_weights(sigma.reshape(P * B).to(x.dtype), radius)     # (P·B, 2r+1)
    padded = F.pad(images, (radius, radius, radius, radius), mode="replicate")
    rows = sum(taps[:, k, None, None, None] * padded[..., k:k + H, :] for k in range(2 * radius + 1))
    out = sum(taps[:, k, None, None, None] * rows[..., k:k + W] for k in range(2 * radius + 1))
    return out.reshape(x.shape)


@dataclass
class Augment(Regularizer):
    """Draws each op's parameters per (member, example) and applies the ops in the listed order."""

    ops: list[str] | str = "auto"  # auto = the data's own defaults (Data.augment_ops), else its modality's
    max_shift: int = 2             # shift: circular translation by an integer in [-max_shift, max_shift]
    scale_range: float = 0.1       # scale: amplitude factor uniform in [1 - scale_range, 1 + scale_range]
    band_max_gain: float = 2.0     # band_gain: gain log-uniform in [1/g, g]
    band_max_width: int = 4        # band_gain: band width uniform in 1..band_max_width rfft bins
    flip_prob: float = 0.5         # flip: probability of a horizontal mirror
    max_translate: float = 0.125   # translate: up to this fraction of the height / width, in whole pixels
    max_degrees: float = 15.0      # rotate: angle uniform in [-max_degrees, max_degrees]
    max_sigma: float = 1.0         # blur: sigma uniform in [0, max_sigma] pixels
    max_slope: float = 1.0         # slope: ramp rise uniform in [-max_slope, max_slope] over the signal
    max_offset: float = 0.5        # offset: level uniform in [-max_offset, max_offset]
    name: ClassVar[str] = "augment"
    order: ClassVar[int] = 10      # input transforms run before target transforms (mixup, smoothing)

    def __post_init__(self) -> None:
        key = "regularizer.augment"
        # `auto`, not null: results stored when null meant [flip, rotate, blur] must not share a config hash
        # with runs that take the dataset's own ops.
        if self.ops != "auto":
            if not isinstance(self.ops, list) or not self.ops:
                raise ConfigError(f"{key}.ops={self.ops!r} is not allowed: expected auto or a list of op names")
            for op in self.ops:
                check_choice(f"{key}.ops", op, ALLOWED_OPS["signal"] + ALLOWED_OPS["image"])
        check_number(f"{key}.max_shift", self.max_shift, low=0, integer=True)
        check_number(f"{key}.scale_range", self.scale_range, low=0.0, high=1.0, high_open=True)
        check_number(f"{key}.band_max_gain", self.band_max_gain, low=1.0)
        check_number(f"{key}.band_max_width", self.band_max_width, low=1, integer=True)
        check_number(f"{key}.flip_prob", self.flip_prob, low=0.0, high=1.0)
        check_number(f"{key}.max_translate", self.max_translate, low=0.0, high=1.0, high_open=True)
        check_number(f"{key}.max_degrees", self.max_degrees, low=0.0, high=180.0)
        check_number(f"{key}.max_sigma", self.max_sigma, low=0.0)
        check_number(f"{key}.max_slope", self.max_slope, low=0.0)
        check_number(f"{key}.max_offset", self.max_offset, low=0.0)

    def bind(self, streams: Streams, data: Data) -> None:
        super().bind(streams, data)
        allowed = ALLOWED_OPS.get(data.modality, ())
        if not allowed:
            raise NotApplicable(f"regularizer.augment has no ops for {data.modality} data ({data.name}): "
                                f"augmentation needs signal or image data")
        defaults = DEFAULT_OPS[data.modality] if data.augment_ops is None else tuple(data.augment_ops)
        self.active_ops = defaults if self.ops == "auto" else tuple(self.ops)
        if not self.active_ops:
            raise NotApplicable(f"regularizer.augment: dataset {data.name} names no augmentation that keeps its "
                                f"labels; choose ops explicitly from {', '.join(allowed)}")
        for op in self.active_ops:
            if op not in ALLOWED_OPS[data.modality]:
                raise NotApplicable(f"regularizer.augment.ops={list(self.active_ops)!r} is not allowed for "
                                  f"{data.modality} data ({data.name}): choose from {', '.join(ALLOWED_OPS[data.modality])}")

    def batch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B = x.shape[1]
        for op in self.active_ops:
            u = self.streams.uniform(self.stream(op), (B, 3)).to(x.dtype)  # (P, B, 3): this op's draws
            x = getattr(self, f"_{op}")(x, u[..., 0], u[..., 1], u[..., 2])
        return x, y

    # Each maps three U[0,1) draws per example ((P, B) each) to the op's parameters.
    def _shift(self, x, u, _v, _w):
        shifts = torch.floor(u * (2 * self.max_shift + 1)).long() - self.max_shift
        return shift_signal(x, shifts)

    def _scale(self, x, u, _v, _w):
        return scale_signal(x, 1 + self.scale_range * (2 * u - 1))

    def _band_gain(self, x, u, v, w):
        bins = x.shape[-1] // 2 + 1
        width = torch.floor(u * min(self.band_max_width, bins)).long() + 1
        start = torch.floor(v * (bins - width + 1)).long()
        gain = torch.exp(math.log(self.band_max_gain) * (2 * w - 1))
        return band_gain(x, start, width, gain)

    def _slope(self, x, u, _v, _w):
        return slope_signal(x, self.max_slope * (2 * u - 1))

    def _offset(self, x, u, _v, _w):
        return offset_signal(x, self.max_offset * (2 * u - 1))

    def _flip(self, x, u, _v, _w):
        return flip_image(x, u < self.flip_prob)

    def _translate(self, x, u, v, _w):
        reach_down, reach_right = (math.floor(self.max_translate * side) for side in x.shape[-2:])
        down = torch.floor(u * (2 * reach_down + 1)).long() - reach_down
        right = torch.floor(v * (2 * reach_right + 1)).long() - reach_right
        return translate_image(x, down, right)

    def _rotate(self, x, u, _v, _w):
        return rotate_image(x, self.max_degrees * (2 * u - 1))

    def _blur(self, x, u, _v, _w):
        return blur_image(x, self.max_sigma * u, radius=math.ceil(3 * self.max_sigma))
