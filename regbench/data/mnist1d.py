"""MNIST-1D (Greydanus, 2020): 10 classes of length-40 signals, regenerated offline and cached."""
from __future__ import annotations

import dataclasses
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from regbench.config import ConfigError, check_number
from regbench.data.base import Data, SplitSettings
from regbench.results import write_atomic


def check_related_seed(key: str, generator_seed: int, data: Data) -> None:
    """A fresh MNIST-1D draw for pretraining must not be the target's own: its test split would leak.
    `data` is the target (an MNIST-1D draw, see `require_mnist1d`)."""
    if generator_seed == data.generator_seed:
        raise ConfigError(f"{key}={generator_seed} is not allowed: it is the target's own draw "
                          f"(dataset.generator_seed={data.generator_seed}), whose test examples would leak "
                          "into pretraining")


# Arguments of the mnist1d generator that a pretraining source may change, with the published values.
GENERATOR_DEFAULTS = {"scale_coeff": 0.4, "max_translation": 48, "corr_noise_scale": 0.25,
                      "iid_noise_scale": 0.02, "shear_scale": 0.75}


def generator_changes(changes: dict[str, float] | None) -> dict[str, float]:
    """The entries of `changes` that differ from GENERATOR_DEFAULTS, in a fixed (sorted) order."""
    changes = changes or {}
    unknown = sorted(set(changes) - set(GENERATOR_DEFAULTS))
    assert not unknown, f"not mnist1d generator arguments: {unknown}"
    return {key: changes[key] for key in sorted(changes) if changes[key] != GENERATOR_DEFAULTS[key]}


def generate(generator_seed: int, num_samples: int = 5000,
             changes: dict[str, float] | None = None) -> dict[str, np.ndarray]:
    """The mnist1d package's generator (seed 42, 5000 = the published data; 80% train, 20% test), its
    default arguments but for `changes` (keys of GENERATOR_DEFAULTS)."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = generator_seed
    args.num_samples = num_samples
    for key, value in generator_changes(changes).items():
        setattr(args, key, value)
    # make_dataset seeds numpy's global RNG; keep that from leaking into the rest of the process.
    state = np.random.get_state()
    try:
        raw = make_dataset(args)
    finally:
        np.random.set_state(state)
    return {key: np.asarray(raw[key]) for key in ("x", "y", "x_test", "y_test")}


def generator_version() -> str:
    """The installed mnist1d package's version: what generated a draw (a cached draw and a result
    belong to the generator that made them)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mnist1d")
    except PackageNotFoundError:
        return "unknown"


def cache_name(generator_seed: int, num_samples: int = 5000, changes: dict[str, float] | None = None) -> str:
    """The draw's file name: the generator's version, its seed, its size unless 5000, and every changed
    generator argument. A draw cached by another version of the generator is never read."""
    size = "" if num_samples == 5000 else f"_n{num_samples}"
    changed = "".join(f"_{key}{value:g}" for key, value in generator_changes(changes).items())
    return f"mnist1d-{generator_version()}_seed{generator_seed}{size}{changed}.npz"


def load_cached(data_dir: str, generator_seed: int, num_samples: int = 5000,
                changes: dict[str, float] | None = None) -> dict[str, np.ndarray]:
    """Generate once per (seed, size, changed arguments), then read the .npz; written atomically
    (parallel jobs)."""
    path = Path(os.path.expanduser(data_dir)) / cache_name(generator_seed, num_samples, changes)
    if path.exists():
        with np.load(path) as stored:
            return {key: stored[key] for key in stored.files}
    arrays = generate(generator_seed, num_samples, changes)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_atomic(path, buffer.getvalue())
    return arrays


TRAIN_EXAMPLES = 4000  # the published draw's training part (80% of 5000); tests/test_data.py checks it


@dataclass
class Mnist1D(SplitSettings):
    data_dir: str = "~/.cache/regbench"
    generator_seed: int = 42

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number("dataset.generator_seed", self.generator_seed, low=0, integer=True)

    def training_portion(self) -> int:
        return TRAIN_EXAMPLES

    def source(self) -> str:
        """What generates the data: part of a result's identity (regbench.identity)."""
        return f"mnist1d {generator_version()}"

    def load(self) -> Data:
        arrays = load_cached(self.data_dir, self.generator_seed)
        data = self.split("mnist1d", arrays["x"], arrays["y"], arrays["x_test"], arrays["y_test"],
                          num_classes=10, modality="signal")
        return dataclasses.replace(data, generator_seed=self.generator_seed)
