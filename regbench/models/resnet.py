"""A small residual net for 32x32 images (He et al. 2016, CIFAR variant): a 3x3 stem, one basic block
per stage (`widths`, stride 2 from the second stage on), global average pool, linear head.

GroupNorm instead of BatchNorm: BatchNorm's running statistics are state shared across a batch and
updated in place, which a vectorized population (vmap over members) cannot keep per member.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from regbench.config import ConfigError, check_number
from regbench.models.base import ModelSpec


class GroupNorm(nn.Module):
    """nn.GroupNorm's arithmetic (Wu & He 2018) in plain tensor ops: torch's fused group_norm kernel
    raises under vmap on CPU ("NYI: querying is_contiguous inside of vmap"), this runs in a population."""

    def __init__(self, groups: int, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.groups, self.eps = groups, eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grouped = x.reshape(x.shape[0], self.groups, -1)                 # (N, G, C/G · H · W)
        mean = grouped.mean(-1, keepdim=True)
        var = grouped.var(-1, unbiased=False, keepdim=True)
        normed = ((grouped - mean) * torch.rsqrt(var + self.eps)).reshape(x.shape)
        return normed * self.weight[:, None, None] + self.bias[:, None, None]


class BasicBlock(nn.Module):
    """out = act(GN(conv(act1(GN(conv(x))))) + shortcut(x)); shortcut = 1x1 conv + GN when the shape changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, groups: int,
                 act1: list[nn.Module], act2: list[nn.Module]) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
            GroupNorm(groups, out_channels), *act1,
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            GroupNorm(groups, out_channels))
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          GroupNorm(groups, out_channels))
        self.out = nn.Sequential(*act2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x) + self.shortcut(x))


@dataclass
class ResNet(ModelSpec):
    widths: list[int] = field(default_factory=lambda: [16, 32, 64])
    groups: int = 8
    name: ClassVar[str] = "resnet"
    input_shapes: ClassVar[str] = "images shaped (C, H, W)"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.widths, list) or not self.widths or not all(
                isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in self.widths):
            raise ConfigError(f"model.widths={self.widths!r} is not allowed: expected a non-empty list of "
                              "integers >= 1")
        check_number("model.groups", self.groups, low=1, integer=True)
        for width in self.widths:
            if width % self.groups:
                raise ConfigError(f"model.groups={self.groups} does not divide model.widths={self.widths}: "
                                  "GroupNorm needs every width to be a multiple of groups")

    def accepts(self, input_shape: tuple[int, ...]) -> bool:
        return len(input_shape) == 3

    def build(self, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        in_channels, height, width = input_shape
        first = self.widths[0]
        layers: list[nn.Module] = [nn.Conv2d(in_channels, first, 3, padding=1, bias=False),
                                   GroupNorm(self.groups, first), *self.nonlinearity((first, height, width))]
        channels = first
        for stage, out in enumerate(self.widths):
            stride = 1 if stage == 0 else 2
            height, width = (height - 1) // stride + 1, (width - 1) // stride + 1
            layers.append(BasicBlock(channels, out, stride, self.groups,
                                     self.nonlinearity((out, height, width)), self.nonlinearity((out, height, width))))
            channels = out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)]
        return self.initialize(nn.Sequential(*layers))
