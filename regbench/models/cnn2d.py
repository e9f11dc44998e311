"""A small image conv net: two 3x3 conv layers (ReLU, 2x2 max-pool each) and a linear head.

Sized for 1x8x8 digits, 1x28x28 MNIST and 3x32x32 CIFAR-10: after two pools 8 -> 2, 28 -> 7, 32 -> 8.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from torch import nn

from regbench.config import ConfigError
from regbench.models.base import ModelSpec


@dataclass
class CNN2D(ModelSpec):
    channels: list[int] = field(default_factory=lambda: [16, 32])
    name: ClassVar[str] = "cnn2d"
    input_shapes: ClassVar[str] = "images shaped (C, H, W), H and W >= 2 per conv layer"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.channels, list) or not self.channels or not all(
                isinstance(c, int) and not isinstance(c, bool) and c >= 1 for c in self.channels):
            raise ConfigError(f"model.channels={self.channels!r} is not allowed: expected a non-empty list "
                              "of integers >= 1")

    def accepts(self, input_shape: tuple[int, ...]) -> bool:
        limit = 2 ** len(self.channels)
        return len(input_shape) == 3 and input_shape[1] >= limit and input_shape[2] >= limit

    def build(self, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        in_channels, height, width = input_shape
        layers: list[nn.Module] = []
        for out in self.channels:
            layers.append(nn.Conv2d(in_channels, out, 3, padding=1))
            layers += self.nonlinearity((out, height, width))
            layers.append(nn.MaxPool2d(2))
            in_channels, height, width = out, height // 2, width // 2
        layers += [nn.Flatten(), nn.Linear(in_channels * height * width, num_classes)]
        return self.initialize(nn.Sequential(*layers))
