"""One hidden layer of ReLU units, then a linear output (UDL's shallow network, ch. 3 and 8-9).

With `first_layer: fixed_kinks` (the 1-D toy's network, UDL notebooks 9.1-9.3) hidden unit j computes
a(x - j/hidden), j = 0 .. hidden-1: with ReLU, a linear spline whose kinks sit evenly over [0, 1]. That
layer is fixed (its weight and bias are buffers, not parameters: no optimizer, penalty or noise reaches
them) and only the output layer trains, so training is least squares on fixed features.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from regbench.config import ConfigError, check_choice, check_number
from regbench.models.base import ModelSpec
from regbench.models.population import Flatten, Linear

FIRST_LAYERS = ("fixed_kinks", "trained")


class FixedLinear(Linear):
    """A Linear layer whose weight (out, in) and bias (out,) are buffers: the same in every member, never trained."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        nn.Module.__init__(self)
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)


def kinks(hidden: int) -> FixedLinear:
    """Unit j: x - j/hidden, so that its activation bends at x = j/hidden (j = 0 .. hidden-1)."""
    return FixedLinear(torch.ones(hidden, 1), -torch.arange(hidden, dtype=torch.float32) / hidden)


@dataclass
class Shallow(ModelSpec):
    hidden: int = 14
    first_layer: str = "fixed_kinks"   # fixed_kinks (one input: kinks at j/hidden, not trained) | trained
    init: str = "torch"       # the trained layers' init: torch's uniform biases spread the kinks (conf/model/shallow.yaml)
    name: ClassVar[str] = "shallow"
    input_shapes: ClassVar[str] = "inputs of any shape (flattened); first_layer=fixed_kinks: one input feature"
    # 2: first_layer (fixed kinks at j/hidden, the new default) and hidden 14 (was 100, trained first layer)
    revision: ClassVar[int] = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number("model.hidden", self.hidden, low=1, integer=True)
        check_choice("model.first_layer", self.first_layer, FIRST_LAYERS)

    def accepts(self, input_shape: tuple[int, ...]) -> bool:
        return self.first_layer == "trained" or math.prod(input_shape) == 1

    def check_input(self, data_name: str, input_shape: tuple[int, ...]) -> None:
        if not self.accepts(input_shape):
            raise ConfigError(f"model.first_layer=fixed_kinks places kinks along one input, but dataset={data_name} "
                              f"gives inputs shaped {tuple(input_shape)}: set model.first_layer=trained")

    def build(self, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        """`num_classes`: the output size (classes, or the regression targets' width)."""
        width = math.prod(input_shape)
        first = kinks(self.hidden) if self.first_layer == "fixed_kinks" else Linear(width, self.hidden)
        hidden = self.nonlinearity((self.hidden,))
        output = Linear(self.hidden, num_classes)
        for layer in (first, output):
            if not isinstance(layer, FixedLinear):   # `init` reaches parameters only: fixed kinks stay put
                self.initialize(layer)
        return nn.Sequential(Flatten(len(input_shape)), first, *hidden, output)
