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


def generate(generator_seed: int, num_samples: int = 5000) -> dict[str, np.ndarray]:
    """The mnist1d package's generator with its default arguments (seed 42, 5000 = the published data;
    80% train, 20% test)."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = generator_seed
    args.num_samples = num_samples
    # make_dataset seeds numpy's global RNG; keep that from leaking into the rest of the process.
    state = np.random.get_state()
    try:
        raw = make_dataset(args)
    finally:
        np.random.set_state(state)
    return {key: np.asarray(raw[key]) for key in ("x", "y", "x_test", "y_test")}


def load_cached(data_dir: str, generator_seed: int, num_samples: int = 5000) -> dict[str, np.ndarray]:
    """Generate once per (seed, size), then read the .npz; written atomically (parallel jobs)."""
    directory = Path(os.path.expanduser(data_dir))
    size = "" if num_samples == 5000 else f"_n{num_samples}"
    path = directory / f"mnist1d_seed{generator_seed}{size}.npz"
    if path.exists():
        with np.load(path) as stored:
            return {key: stored[key] for key in stored.files}
    arrays = generate(generator_seed, num_samples)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_atomic(path, buffer.getvalue())
    return arrays


@dataclass
class Mnist1D(SplitSettings):
    data_dir: str = "~/.cache/regbench"
    generator_seed: int = 42

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number("dataset.generator_seed", self.generator_seed, low=0, integer=True)

    def load(self) -> Data:
        arrays = load_cached(self.data_dir, self.generator_seed)
        data = self.split("mnist1d", arrays["x"], arrays["y"], arrays["x_test"], arrays["y_test"],
                          num_classes=10, modality="signal")
        return dataclasses.replace(data, generator_seed=self.generator_seed)
