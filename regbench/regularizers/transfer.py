"""Transfer learning: pretrain on a related source task with more data, then replace the output layer
and fine-tune on the target set, optionally with the body frozen (UDL 9.3.6).

The source task is MNIST-1D drawn afresh: another generator seed (new examples from the same
templates and transforms), `source_samples` examples, and the classes renamed by a fixed random
permutation, so the output layer has to be learned again while the features carry over.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from regbench.config import check_number
from regbench.data.base import Data
from regbench.data.mnist1d import check_related_seed, load_cached
from regbench.regularizers.pretraining import PretrainedBody, require_mnist1d
from regbench.trainer.hooks import Regularizer
from regbench.trainer.loop import CLASSIFICATION, Objective
from regbench.trainer.streams import Streams


def source_task(data_dir: str, generator_seed: int, samples: int, permute_labels: bool) -> Data:
    """MNIST-1D regenerated with `generator_seed` and `samples` examples, its labels relabelled."""
    arrays = load_cached(data_dir, generator_seed, samples)
    y, y_test = arrays["y"], arrays["y_test"]
    if permute_labels:
        mapping = np.random.default_rng(generator_seed).permutation(10)
        y, y_test = mapping[y], mapping[y_test]

    def tensor(a: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype)

    empty = tensor(arrays["x"][:0], torch.float32)
    return Data(name="mnist1d-source", x_train=tensor(arrays["x"], torch.float32), y_train=tensor(y, torch.int64),
                x_val=empty, y_val=tensor(y[:0], torch.int64),
                x_test=tensor(arrays["x_test"], torch.float32), y_test=tensor(y_test, torch.int64),
                num_classes=10, modality="signal")


@dataclass
class Transfer(PretrainedBody):
    source_seed: int = 1
    source_samples: int = 20000
    permute_labels: bool = True
    data_dir: str = "~/.cache/regbench"
    name = "transfer"
    technique = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number("regularizer.transfer.source_seed", self.source_seed, low=0, integer=True)
        check_number("regularizer.transfer.source_samples", self.source_samples, low=100, integer=True)

    def bind(self, streams: Streams, data: Data) -> None:
        super().bind(streams, data)
        require_mnist1d("regularizer=transfer", data)
        check_related_seed("regularizer.transfer.source_seed", self.source_seed, data)

    def stage(self) -> tuple[Data, Objective, list[Regularizer]]:
        source = source_task(self.data_dir, self.source_seed, self.source_samples, self.permute_labels)
        return source.to(self.streams.device), CLASSIFICATION, []
