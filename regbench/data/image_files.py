"""MNIST, Fashion-MNIST and CIFAR-10 read from the published files, in the folders torchvision downloads to.

    <data_dir>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]
    <data_dir>/FashionMNIST/raw/  (the same four names)
    <data_dir>/cifar-10-batches-py/{data_batch_1..5,test_batch}   (pickled dicts: b"data", b"labels")

IDX (LeCun et al.): a big-endian magic 0x0000 08 NN (08 = unsigned bytes, NN = number of dims), NN
big-endian uint32 sizes, then the bytes. Nothing is downloaded here: a missing file is a one-line error
saying how to get it, and a file that is not what its name says (corrupt, truncated, a label outside
0..9, MNIST images not 28x28) is a one-line error naming it, before anything trains.
"""
from __future__ import annotations

import dataclasses
import gzip
import math
import os
import pickle
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from regbench.config import ConfigError
from regbench.data.base import Data, SplitSettings
from regbench.data.images import PHOTO_OPS, UPRIGHT_OPS, standardize_channels

IDX_IMAGES = 0x00000803  # unsigned bytes, 3 dims (N, H, W)
IDX_LABELS = 0x00000801  # unsigned bytes, 1 dim (N,)
CLASSES = 10             # MNIST, Fashion-MNIST and CIFAR-10 alike


def read_idx(path: Path, magic: int) -> np.ndarray:
    """An IDX file (gzipped when its name ends in .gz) as a uint8 array of the dims its header gives."""
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as stream:
            raw = stream.read()
    except (OSError, EOFError, zlib.error) as error:  # a truncated or corrupt gzip stream
        raise ConfigError(f"{path} cannot be read as an IDX file: {error}") from None
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header or int.from_bytes(raw[:4], "big") != magic:
        raise ConfigError(f"{path} is not an IDX file of {ndim}-d unsigned bytes: expected magic "
                          f"0x{magic:08x}, found 0x{raw[:4].hex() or 'nothing'}")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if len(raw) != header + math.prod(dims):
        raise ConfigError(f"{path} is truncated or malformed: its header gives {dims} = {math.prod(dims)} "
                          f"bytes of data, the file holds {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def class_indices(path: Path, labels: np.ndarray) -> np.ndarray:
    """The labels read from `path` as int64 class indices; a ConfigError naming the file when one is not
    an integer in 0..CLASSES-1 (the loss would fail on it mid-training, or silently learn a wrong class)."""
    if labels.size and labels.dtype.kind not in "iu":
        raise ConfigError(f"{path} holds {labels.dtype} labels, expected integers 0..{CLASSES - 1}")
    wrong = np.flatnonzero((labels < 0) | (labels >= CLASSES))
    if len(wrong):
        more = f" and {len(wrong) - 1} more" if len(wrong) > 1 else ""
        raise ConfigError(f"{path} holds labels outside 0..{CLASSES - 1}: {labels[wrong[0]]} at example "
                          f"{wrong[0]}{more}")
    return labels.astype(np.int64)


class NumpyOnlyUnpickler(pickle.Unpickler):
    """The CIFAR batches are pickles: load the numpy arrays and builtins they hold, and no other code."""
    # _codecs.encode: how protocol-2 pickles written by Python 3 store bytes
    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR batch")
        return super().find_class(module, name)


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch: ((N, 3, 32, 32) uint8 images, (N,) labels)."""
    try:
        with open(path, "rb") as stream:
            batch = NumpyOnlyUnpickler(stream, encoding="bytes").load()
        images = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"])
        if images.ndim != 2 or images.shape[1] != 3072 or labels.shape != (len(images),):
            raise ValueError(f"b'data' is {images.shape} and b'labels' {labels.shape}, expected (N, 3072) and (N,)")
    except Exception as error:  # truncated pickle, missing keys, wrong shapes: the file is at fault
        raise ConfigError(f"{path} is not a CIFAR-10 python batch: {type(error).__name__}: {error}") from None
    return images.reshape(-1, 3, 32, 32), class_indices(path, labels)


def missing(dataset: str, path: Path, how: str) -> ConfigError:
    return ConfigError(f"dataset={dataset} needs {path}, which is missing: {how}")


@dataclass
class ImageFiles(SplitSettings):
    """A dataset stored as files under `data_dir`; subclasses name the folder and read the arrays."""
    data_dir: str = "~/.cache/regbench"
    name: ClassVar[str]
    augment_ops: ClassVar[tuple[str, ...]] = UPRIGHT_OPS   # the augmentations that keep the labels

    def root(self) -> Path:
        return Path(os.path.expanduser(self.data_dir))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(x_train (N, C, H, W) uint8, y_train, x_test, y_test)."""
        raise NotImplementedError

    def load(self) -> Data:
        x, y, x_test, y_test = self.arrays()
        data = self.split(self.name, x.astype(np.float32) / 255, y, x_test.astype(np.float32) / 255, y_test,
                          num_classes=CLASSES, modality="image")
        return dataclasses.replace(standardize_channels(data), augment_ops=self.augment_ops)


@dataclass
class IdxImages(ImageFiles):
    folder: ClassVar[str]
    torchvision_class: ClassVar[str]

    def find(self, stem: str) -> Path:
        raw = self.root() / self.folder / "raw"
        for path in (raw / stem, raw / f"{stem}.gz"):
            if path.exists():
                return path
        raise missing(self.name, raw / f"{stem}[.gz]",
                      f"get it with `pip install torchvision` then `torchvision.datasets.{self.torchvision_class}"
                      f"('{self.data_dir}', download=True)`, or download {stem}.gz by hand into {raw}")

    def arrays(self):
        def part(prefix: str) -> tuple[np.ndarray, np.ndarray]:
            images_path = self.find(f"{prefix}-images-idx3-ubyte")
            images = read_idx(images_path, IDX_IMAGES)
            if images.shape[1:] != (28, 28):
                raise ConfigError(f"{images_path} holds images of {images.shape[1]}x{images.shape[2]} pixels, "
                                  f"expected 28x28")
            labels_path = self.find(f"{prefix}-labels-idx1-ubyte")
            labels = read_idx(labels_path, IDX_LABELS)
            if len(labels) != len(images):
                raise ConfigError(f"{labels_path} holds {len(labels)} labels for {len(images)} images")
            return images[:, None], class_indices(labels_path, labels)
        return (*part("train"), *part("t10k"))


@dataclass
class Mnist(IdxImages):
    name: ClassVar[str] = "mnist"
    folder: ClassVar[str] = "MNIST"
    torchvision_class: ClassVar[str] = "MNIST"


@dataclass
class FashionMnist(IdxImages):
    name: ClassVar[str] = "fashion_mnist"
    folder: ClassVar[str] = "FashionMNIST"
    torchvision_class: ClassVar[str] = "FashionMNIST"


@dataclass
class Cifar10(ImageFiles):
    name: ClassVar[str] = "cifar10"
    augment_ops: ClassVar[tuple[str, ...]] = PHOTO_OPS
    FILES: ClassVar[tuple[str, ...]] = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")

    def arrays(self):
        folder = self.root() / "cifar-10-batches-py"
        parts = []
        for file in self.FILES:
            if not (folder / file).exists():
                raise missing(self.name, folder / file,
                              f"get it with `pip install torchvision` then `torchvision.datasets.CIFAR10("
                              f"'{self.data_dir}', download=True)`, or unpack cifar-10-python.tar.gz from "
                              f"https://www.cs.toronto.edu/~kriz/cifar.html into {self.root()}")
            parts.append(read_cifar_batch(folder / file))
        x = np.concatenate([images for images, _ in parts[:-1]])
        y = np.concatenate([labels for _, labels in parts[:-1]])
        return x, y, *parts[-1]
