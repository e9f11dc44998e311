"""The tensors a job trains and evaluates on, and the split logic shared by every dataset."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from regbench.config import ConfigError, check_number


@dataclass
class Data:
    """Train / validation / test tensors of one dataset, already split.

    x_*: (N, *input_shape) float32; y_*: (N,) int64 class labels for classification, float32 targets
    (N,) or (N, D) for regression (the network then has 1 or D outputs; num_classes is unused, 0).
    The validation split is carved from the training set with a fixed seed, so every technique sees
    the same split.
    """
    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    modality: str  # signal | image | tabular: picks the default augmentations
    task: str = "classification"  # classification | regression: picks the loss and the metrics
    # Inputs of training examples whose labels were dropped by n_train (unlabelled, for pretraining).
    x_unlabelled: torch.Tensor | None = None
    # The generator seed of a synthetic dataset's draw (MNIST-1D); None for data that is not drawn.
    generator_seed: int | None = None
    # The original label of each class (classes[k] is class k) where a file's labels were renumbered.
    classes: list | None = None
    # The augmentation ops that keep this dataset's labels (regularizer.augment with ops: auto); None: the
    # defaults of its modality (regbench.regularizers.augment.DEFAULT_OPS).
    augment_ops: tuple[str, ...] | None = None

    @property
    def output_size(self) -> int:
        """Outputs the network needs: one per class, or the regression targets' width (1 for scalar y)."""
        if self.task == "regression":
            return 1 if self.y_train.dim() == 1 else int(self.y_train.shape[1])
        return self.num_classes

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def unlabelled_pool(self) -> torch.Tensor:
        """Every training input, labelled or not: what self-supervised pretraining may use (never test)."""
        if self.x_unlabelled is None:
            return self.x_train
        return torch.cat([self.x_train, self.x_unlabelled])

    def to(self, device: torch.device | str) -> "Data":
        moved = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for key, value in moved.items():
            if isinstance(value, torch.Tensor):
                moved[key] = value.to(device)
        return Data(**moved)


def row_keys(x: torch.Tensor) -> list[bytes]:
    """Each row of x (N, *shape), standardized (its own mean 0, std 1) and rounded to 3 decimals, as bytes.

    Equal keys: the same input up to a shift and scale of the whole row. A dataset renormalized as a
    whole keeps its rows' keys: MNIST-1D draws that share a generator seed share examples, each draw
    normalized by its own mean and std. Constant rows all share one key.
    """
    rows = x.detach().to("cpu", torch.float64).reshape(len(x), -1)
    rows = (rows - rows.mean(1, keepdim=True)) / rows.std(1, keepdim=True).nan_to_num(0.0).clamp_min(1e-12)
    rows = torch.round(rows, decimals=3) + 0.0   # + 0.0: -0.0 and 0.0 are one key
    return [row.tobytes() for row in rows.numpy()]


def count_test_inputs_in(inputs: torch.Tensor, data: Data) -> int:
    """How many of data's test inputs are among `inputs` (N, *input_shape), compared by `row_keys`."""
    seen = set(row_keys(inputs))
    return sum(key in seen for key in row_keys(data.x_test))


def check_no_test_inputs(key: str, inputs: torch.Tensor, data: Data) -> None:
    """A pretraining stage must never train on the target's test inputs: raise ConfigError if it would."""
    leaked = count_test_inputs_in(inputs, data)
    if leaked:
        raise ConfigError(f"{key}: {leaked} of the {len(data.x_test)} test inputs of dataset {data.name} are "
                          "among the pretraining inputs (copies, up to a rescaling): pretraining would see "
                          "the test set")


def corrupt_labels(y: np.ndarray, fraction: float, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """A copy of class labels y (N,) with each label, independently with probability `fraction`, redrawn
    uniformly from the `num_classes` classes, independent of its input and of its old value (Zhang et al.
    2017, "partially corrupted labels"; fraction 1: "random labels", every label drawn at random).

    A redrawn label may land on its own class, so about fraction·(K−1)/K of the labels end up wrong
    (0.9·fraction with 10 classes). Only training labels are ever passed here: validation and test keep theirs.
    """
    corrupted = y.copy()
    redrawn = rng.random(len(y)) < fraction   # (N,) which labels are redrawn
    corrupted[redrawn] = rng.integers(0, num_classes, int(redrawn.sum()))
    return corrupted


@dataclass
class SplitSettings:
    """How a dataset's training portion is cut into what a job trains and validates on."""
    val_fraction: float = 0.1
    n_train: int | None = None
    label_noise: float = 0.0
    split_seed: int = 0
    # Bump when a change to the dataset's code changes what a config computes (regbench.identity).
    revision: ClassVar[int] = 1

    def __post_init__(self) -> None:
        check_number("dataset.val_fraction", self.val_fraction, low=0.0, high=1.0, high_open=True)
        check_number("dataset.n_train", self.n_train, low=1, integer=True, optional=True)
        check_number("dataset.label_noise", self.label_noise, low=0.0, high=1.0)
        check_number("dataset.split_seed", self.split_seed, low=0, integer=True)

    def training_portion(self) -> int | None:
        """Examples in the dataset's training portion, before the validation split, where known without
        loading the data (None: unknown, e.g. files)."""
        return None

    def pool_size(self) -> int | None:
        """Examples left after the validation split (what `n_train` takes from); None where unknown."""
        n = self.training_portion()
        return None if n is None else n - int(round(self.val_fraction * n))

    def split(self, name: str, x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
              num_classes: int, modality: str, task: str = "classification") -> Data:
        """Validation split, labelled subset and label noise, all drawn from `split_seed` alone.

        Regression targets (task='regression') are kept as float32 and take no label noise."""
        if task == "regression" and self.label_noise:
            raise ConfigError(f"dataset.label_noise={self.label_noise!r} is not allowed for {name}: a regression "
                              "dataset has no classes to flip labels between; leave it 0")
        rng = np.random.default_rng(self.split_seed)
        order = rng.permutation(len(y))
        n_val = int(round(self.val_fraction * len(y)))
        val, train = order[:n_val], order[n_val:]
        unlabelled = train[:0]
        if self.n_train is not None:
            if self.n_train > len(train):
                raise ConfigError(f"dataset.n_train={self.n_train} is out of range: expected an integer "
                                  f"<= {len(train)} (the examples left after the validation split) or null")
            train, unlabelled = train[: self.n_train], train[self.n_train:]
        y_train = corrupt_labels(y[train], self.label_noise, num_classes, rng) if task == "classification" \
            else y[train].copy()
        target = torch.int64 if task == "classification" else torch.float32

        def tensor(a: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype)

        return Data(name=name,
                    x_train=tensor(x[train], torch.float32), y_train=tensor(y_train, target),
                    x_val=tensor(x[val], torch.float32), y_val=tensor(y[val], target),
                    x_test=tensor(x_test, torch.float32), y_test=tensor(y_test, target),
                    num_classes=num_classes, modality=modality, task=task,
                    x_unlabelled=tensor(x[unlabelled], torch.float32))


@dataclass
class HeldOutTest(SplitSettings):
    """A dataset without an official test split: a fixed fraction is held out with `test_seed` alone,
    before the validation / subset / label-noise split, so every job and technique tests on the same
    examples whatever its `split_seed`."""
    test_fraction: float = 0.2
    test_seed: int = 0
    examples: ClassVar[int | None] = None   # the whole dataset's size, where fixed (scikit-learn's copies)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number("dataset.test_fraction", self.test_fraction, low=0.0, high=1.0, low_open=True,
                     high_open=True)
        check_number("dataset.test_seed", self.test_seed, low=0, integer=True)

    def training_portion(self) -> int | None:
        if self.examples is None:
            return None
        return self.examples - int(round(self.test_fraction * self.examples))

    def carve_test(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(x, y, x_test, y_test): the held-out test rows and the rest."""
        order = np.random.default_rng(self.test_seed).permutation(len(y))
        n_test = int(round(self.test_fraction * len(y)))
        test, rest = order[:n_test], order[n_test:]
        return x[rest], y[rest], x[test], y[test]
