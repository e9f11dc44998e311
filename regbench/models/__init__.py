"""Model options of the `model` config group: each a dataclass that builds an nn.Module."""
from __future__ import annotations

from regbench.models.base import ModelSpec
from regbench.models.cnn1d import CNN1D
from regbench.models.cnn2d import CNN2D
from regbench.models.mlp import MLP
from regbench.models.resnet import ResNet
from regbench.models.shallow import Shallow

MODELS = {
    "mlp": MLP,
    "shallow": Shallow,
    "cnn1d": CNN1D,
    "cnn2d": CNN2D,
    "resnet": ResNet,
}

__all__ = ["MODELS", "ModelSpec"]
