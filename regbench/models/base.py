"""What every model spec shares: initialization and the slot after each hidden activation."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar

from torch import nn

from regbench.config import ConfigError, check_choice

# Builds the module placed after each hidden activation, given that activation's per-example shape.
# Regularizers that act on hidden units (dropout) fill it through their `model` hook.
HiddenHook = Callable[[tuple[int, ...]], nn.Module]

INITS = ("he", "torch")
# The hidden units' nonlinearity (UDL 3.1, 3.2); Kaiming init uses the matching gain (GELU: ReLU's).
ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "tanh": nn.Tanh, "gelu": nn.GELU}
KAIMING_GAIN = {"relu": "relu", "leaky_relu": "leaky_relu", "tanh": "tanh", "gelu": "relu"}


@dataclass
class ModelSpec:
    init: str = "he"
    activation: str = "relu"
    after_activation: list[HiddenHook] = field(default_factory=list, init=False, repr=False)
    name: ClassVar[str]           # the option's name in the `model` group
    input_shapes: ClassVar[str]   # the per-example input shapes `accepts` takes, in words
    # Bump when a change to the model's code changes what a config computes (regbench.identity).
    revision: ClassVar[int] = 1

    def __post_init__(self) -> None:
        check_choice("model.init", self.init, INITS)
        check_choice("model.activation", self.activation, tuple(ACTIVATIONS))

    def nonlinearity(self, shape: tuple[int, ...]) -> list[nn.Module]:
        """The activation, then whatever the regularizers placed after it."""
        return [ACTIVATIONS[self.activation](), *(make(shape) for make in self.after_activation)]

    def initialize(self, module: nn.Module) -> nn.Module:
        """'he': Kaiming-uniform weights and zero biases (UDL notebooks); 'torch': leave PyTorch's init."""
        if self.init == "he":
            for layer in module.modules():
                if isinstance(layer, (nn.Linear, nn.Conv1d, nn.Conv2d)):
                    nn.init.kaiming_uniform_(layer.weight, nonlinearity=KAIMING_GAIN[self.activation])
                    if layer.bias is not None:
                        nn.init.zeros_(layer.bias)
        return module

    def accepts(self, input_shape: tuple[int, ...]) -> bool:
        """Whether `build` can make a network for per-example inputs of this shape."""
        raise NotImplementedError

    def check_input(self, data_name: str, input_shape: tuple[int, ...]) -> None:
        """A model and a dataset that do not fit fail here, before training, in one line naming both."""
        if not self.accepts(input_shape):
            raise ConfigError(f"model={self.name} takes {self.input_shapes}, but dataset={data_name} gives "
                              f"inputs shaped {tuple(input_shape)}: choose a model that fits the data "
                              "(mlp takes any shape)")

    def build(self, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        raise NotImplementedError


def head_names(model: nn.Module) -> list[str]:
    """Names of the output layer's parameters: those of the last submodule that has any.

    Transfer and self-supervised pretraining keep every other parameter (the body) and replace these.
    """
    owners = [name for name, module in model.named_modules()
              if any(True for _ in module.parameters(recurse=False))]
    last = owners[-1]
    return [name for name, _ in model.named_parameters() if name.rpartition(".")[0] == last]
