"""The MNIST-1D paper's convolutional baseline: three stride-2 conv layers and a linear head."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from regbench.config import check_number
from regbench.models.base import ModelSpec


class AddChannel(nn.Module):
    """(N, L) signals -> (N, 1, L); inputs that already have channels pass through."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(-2) if x.dim() == 2 else x


def conv_length(length: int, kernel: int, stride: int, padding: int) -> int:
    return (length + 2 * padding - kernel) // stride + 1


@dataclass
class CNN1D(ModelSpec):
    channels: int = 25
    name: ClassVar[str] = "cnn1d"
    input_shapes: ClassVar[str] = "signals shaped (L,) or (C, L)"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number("model.channels", self.channels, low=1, integer=True)

    def accepts(self, input_shape: tuple[int, ...]) -> bool:
        return len(input_shape) in (1, 2)

    def build(self, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        in_channels, length = (1, input_shape[0]) if len(input_shape) == 1 else input_shape
        layers: list[nn.Module] = [AddChannel()]
        for kernel in (5, 3, 3):
            layers.append(nn.Conv1d(in_channels, self.channels, kernel, stride=2, padding=1))
            length = conv_length(length, kernel, 2, 1)
            layers += self.nonlinearity((self.channels, length))
            in_channels = self.channels
        layers += [nn.Flatten(), nn.Linear(self.channels * length, num_classes)]
        return self.initialize(nn.Sequential(*layers))
