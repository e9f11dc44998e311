"""One hidden layer of many ReLU units, then a linear output (UDL's shallow network, ch. 3 and 8-9)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from regbench.config import check_number
from regbench.models.base import ModelSpec
from regbench.models.population import Flatten, Linear


@dataclass
class Shallow(ModelSpec):
    hidden: int = 100
    init: str = "torch"       # uniform biases spread the ReLU kinks over the inputs (conf/model/shallow.yaml)
    name: ClassVar[str] = "shallow"
    input_shapes: ClassVar[str] = "inputs of any shape (flattened)"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number("model.hidden", self.hidden, low=1, integer=True)

    def accepts(self, input_shape: tuple[int, ...]) -> bool:
        return True

    def build(self, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        """`num_classes`: the output size (classes, or the regression targets' width)."""
        width = math.prod(input_shape)
        return self.initialize(nn.Sequential(Flatten(len(input_shape)), Linear(width, self.hidden),
                                             *self.nonlinearity((self.hidden,)),
                                             Linear(self.hidden, num_classes)))
