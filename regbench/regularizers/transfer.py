"""Transfer learning: pretrain on a related but different source task with more labelled data, then
replace the output layer and fine-tune on the target set, optionally with the body frozen (UDL 9.3.6).

The source is a fresh MNIST-1D draw (another generator seed, `source_samples` examples) from another
input distribution: its generator arguments differ from the target's (by default twice the correlated
noise, amplitude-scale spread and shear). `source_classes` can also restrict it to some of the classes
(renumbered), a different label task. Only the body's features carry over; the output layer is the
member's fresh one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from regbench.config import ConfigError, check_number
from regbench.data.base import Data
from regbench.data.mnist1d import GENERATOR_DEFAULTS, check_related_seed, load_cached
from regbench.regularizers.pretraining import PretrainedBody, require_mnist1d
from regbench.trainer.hooks import Regularizer
from regbench.trainer.loop import CLASSIFICATION, Objective
from regbench.trainer.streams import Streams

MNIST1D_CLASSES = 10


def source_task(data_dir: str, generator_seed: int, samples: int, changes: dict[str, float] | None = None,
                classes: list[int] | None = None) -> Data:
    """MNIST-1D drawn with `generator_seed`, `samples` examples and the generator arguments `changes`;
    only the examples of `classes` (all if None), relabelled 0..len(classes)-1 in that order."""
    arrays = load_cached(data_dir, generator_seed, samples, changes)
    classes = list(range(MNIST1D_CLASSES)) if classes is None else list(classes)
    relabel = np.full(MNIST1D_CLASSES, -1)
    relabel[classes] = np.arange(len(classes))
    keep, keep_test = np.isin(arrays["y"], classes), np.isin(arrays["y_test"], classes)

    def tensor(a: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype)

    x, y = arrays["x"][keep], relabel[arrays["y"][keep]]
    return Data(name="mnist1d-source", x_train=tensor(x, torch.float32), y_train=tensor(y, torch.int64),
                x_val=tensor(x[:0], torch.float32), y_val=tensor(y[:0], torch.int64),
                x_test=tensor(arrays["x_test"][keep_test], torch.float32),
                y_test=tensor(relabel[arrays["y_test"][keep_test]], torch.int64),
                num_classes=len(classes), modality="signal")


@dataclass
class Transfer(PretrainedBody):
    source_seed: int = 1
    source_samples: int = 20000
    source_classes: list[int] | None = None
    # the source draw's mnist1d generator arguments (the target uses GENERATOR_DEFAULTS)
    source_scale_coeff: float = 0.8
    source_max_translation: int = 48
    source_corr_noise_scale: float = 0.5
    source_iid_noise_scale: float = 0.02
    source_shear_scale: float = 1.5
    data_dir: str = "~/.cache/regbench"
    name = "transfer"
    technique = True

    def __post_init__(self) -> None:
        super().__post_init__()
        key = "regularizer.transfer"
        check_number(f"{key}.source_seed", self.source_seed, low=0, integer=True)
        check_number(f"{key}.source_samples", self.source_samples, low=100, integer=True)
        if self.source_classes is not None:
            classes = self.source_classes
            if (not isinstance(classes, list) or len(classes) < 2 or len(set(classes)) != len(classes)
                    or not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c < MNIST1D_CLASSES
                               for c in classes)):
                raise ConfigError(f"{key}.source_classes={classes!r} is not allowed: expected a list of at least "
                                  f"two distinct MNIST-1D classes in 0..{MNIST1D_CLASSES - 1}, or null (all ten)")
        check_number(f"{key}.source_scale_coeff", self.source_scale_coeff, low=0.0, high=2.0, high_open=True)
        check_number(f"{key}.source_max_translation", self.source_max_translation, low=0, high=96, integer=True)
        check_number(f"{key}.source_corr_noise_scale", self.source_corr_noise_scale, low=0.0, high=10.0)
        check_number(f"{key}.source_iid_noise_scale", self.source_iid_noise_scale, low=0.0, high=10.0)
        check_number(f"{key}.source_shear_scale", self.source_shear_scale, low=0.0, high=10.0)

    def generator_changes(self) -> dict[str, float]:
        """The source draw's generator arguments, keyed as in GENERATOR_DEFAULTS."""
        return {arg: getattr(self, f"source_{arg}") for arg in GENERATOR_DEFAULTS}

    def bind(self, streams: Streams, data: Data) -> None:
        super().bind(streams, data)
        require_mnist1d("regularizer=transfer", data)
        check_related_seed("regularizer.transfer.source_seed", self.source_seed, data)

    def stage(self) -> tuple[Data, Objective, list[Regularizer]]:
        source = source_task(self.data_dir, self.source_seed, self.source_samples, self.generator_changes(),
                             self.source_classes)
        return source.to(self.streams.device), CLASSIFICATION, []
