"""Fully connected ReLU network: input flattened, `hidden` widths, linear output."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

from torch import nn

from regbench.config import ConfigError
from regbench.models.base import ModelSpec
from regbench.models.population import Flatten, Linear


@dataclass
class MLP(ModelSpec):
    hidden: list[int] = field(default_factory=lambda: [100, 100])
    name: ClassVar[str] = "mlp"
    input_shapes: ClassVar[str] = "inputs of any shape (flattened)"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.hidden, list) or not all(
                isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in self.hidden):
            raise ConfigError(f"model.hidden={self.hidden!r} is not allowed: expected a list of integers >= 1")

    def accepts(self, input_shape: tuple[int, ...]) -> bool:
        return True

    def build(self, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        layers: list[nn.Module] = [Flatten(len(input_shape))]
        width = math.prod(input_shape)
        for out in self.hidden:
            layers += [Linear(width, out), *self.nonlinearity((out,))]
            width = out
        layers.append(Linear(width, num_classes))
        return self.initialize(nn.Sequential(*layers))

