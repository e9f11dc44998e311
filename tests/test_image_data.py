"""Image datasets: tiny files in the real published formats, read back; missing and broken files are one line."""
from __future__ import annotations

import gzip
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from regbench.config import ConfigError
from regbench.data.base import Data
from regbench.data.image_files import IDX_IMAGES, IDX_LABELS, read_cifar_batch, read_idx
from regbench.data.images import standardize_channels
from regbench.experiment import Experiment
from tests.conftest import run_cli

IDX_FOLDERS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    """An IDX file as published: magic 0x0000 08 ndim, big-endian uint32 dims, uint8 data."""
    raw = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    raw += array.astype(np.uint8).tobytes()
    path = path.with_name(path.name + ".gz") if gz else path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def numbered_images(n: int, shape: tuple[int, ...], offset: int) -> np.ndarray:
    """Image i has pixel value offset + 5 i at its first pixel (so it can be found again), noise elsewhere."""
    images = np.random.default_rng(offset).integers(0, 256, (n, *shape)).astype(np.uint8)
    images.reshape(n, -1)[:, 0] = offset + 5 * np.arange(n)
    return images


def write_idx_dataset(root: Path, folder: str, n_train: int = 30, n_test: int = 12, gz: bool = False):
    raw = root / folder / "raw"
    arrays = {"train": (numbered_images(n_train, (28, 28), 0), np.arange(n_train) % 10),
              "t10k": (numbered_images(n_test, (28, 28), 100), (np.arange(n_test) * 3) % 10)}
    for prefix, (images, labels) in arrays.items():
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images, gz)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels, gz)
    return arrays


def write_cifar(root: Path, per_batch: int = 4) -> dict[str, tuple[np.ndarray, list[int]]]:
    """CIFAR-10's python batches: pickled dicts with b"data" (N, 3072) uint8 rows (R, G, B planes) and b"labels"."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    batches = {}
    for i, file in enumerate([*(f"data_batch_{k}" for k in range(1, 6)), "test_batch"]):
        data = np.random.default_rng(i).integers(0, 256, (per_batch, 3072)).astype(np.uint8)
        labels = [(i + j) % 10 for j in range(per_batch)]
        batch = {b"batch_label": file.encode(), b"labels": labels, b"data": data,
                 b"filenames": [f"{j}.png".encode() for j in range(per_batch)]}
        (folder / file).write_bytes(pickle.dumps(batch, protocol=2))
        batches[file] = (data, labels)
    return batches


def load(make_cfg, name: str, root: Path | None, *overrides: str):
    """`name` loaded as a job would; root: its data_dir (None for digits, which has no files)."""
    where = () if root is None else (f"dataset.data_dir={root}",)
    return Experiment.from_config(make_cfg(f"dataset={name}", *where, "dataset.n_train=null",
                                           *overrides)).dataset.load()


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_datasets_read_the_published_files(make_cfg, tmp_path, name, gz):
    arrays = write_idx_dataset(tmp_path, IDX_FOLDERS[name], gz=gz)
    data = load(make_cfg, name, tmp_path, "dataset.val_fraction=0.2")
    assert (data.name, data.modality, data.num_classes) == (name, "image", 10)
    assert data.x_train.shape == (24, 1, 28, 28) and data.x_val.shape == (6, 1, 28, 28)
    assert data.x_test.shape == (12, 1, 28, 28)
    assert torch.equal(data.y_test, torch.as_tensor(arrays["t10k"][1]))  # the official test set, in order
    # every split is one affine map of pixel/255, so each image is found again by its first pixel
    first = data.x_test[:, 0, 0, 0].double()
    raw = torch.as_tensor(arrays["t10k"][0][:, 0, 0] / 255.0)
    assert torch.corrcoef(torch.stack([first, raw]))[0, 1] > 1 - 1e-9
    train_first = torch.cat([data.x_train, data.x_val])[:, 0, 0, 0]
    labels = torch.cat([data.y_train, data.y_val])
    index = torch.argsort(train_first)
    assert torch.equal(labels[index], torch.as_tensor(arrays["train"][1]))
    torch.testing.assert_close(data.x_train.mean(), torch.tensor(0.0), atol=1e-5, rtol=0)


def test_cifar10_reads_the_python_batches(make_cfg, tmp_path):
    batches = write_cifar(tmp_path)
    images, labels = read_cifar_batch(tmp_path / "cifar-10-batches-py" / "test_batch")
    data_rows, written = batches["test_batch"]
    assert images.shape == (4, 3, 32, 32)
    assert images[2, 1, 5, 7] == data_rows[2, 1 * 1024 + 5 * 32 + 7]   # R, G, B planes, row-major
    assert labels.tolist() == written
    data = load(make_cfg, "cifar10", tmp_path, "dataset.val_fraction=0.1")
    assert data.x_train.shape == (18, 3, 32, 32) and data.x_val.shape == (2, 3, 32, 32)
    assert data.y_test.tolist() == written and data.modality == "image"


def test_standardization_uses_training_statistics_only():
    x_train = torch.tensor([0.0, 2.0, 4.0, 6.0]).reshape(4, 1, 1, 1).expand(4, 2, 1, 1).clone()
    x_train[:, 1] *= 10                                                  # channel 1: 0, 20, 40, 60
    far = torch.full((3, 2, 1, 1), 100.0)                               # val and test far away
    y = torch.zeros(4, dtype=torch.int64)
    data = standardize_channels(Data("toy", x_train, y, far, y[:3], far, y[:3], 2, "image"))
    std = torch.tensor([2.0, 20.0]) * (5 / 3) ** 0.5                      # unbiased std of 0, 2, 4, 6 (x10)
    expected = (100 - torch.tensor([3.0, 30.0])) / std
    torch.testing.assert_close(data.x_test[0, :, 0, 0], expected)
    torch.testing.assert_close(data.x_val[0, :, 0, 0], expected)
    torch.testing.assert_close(data.x_train.mean(dim=(0, 2, 3)), torch.zeros(2))


@pytest.mark.slow
def test_digits_is_a_fixed_test_split_then_the_usual_split(make_cfg):
    base = load(make_cfg, "digits", None)
    other_split = load(make_cfg, "digits", None, "dataset.split_seed=1")
    other_test = load(make_cfg, "digits", None, "dataset.test_seed=1")
    assert base.x_test.shape == (359, 1, 8, 8) and len(base.x_train) + len(base.x_val) == 1438
    assert (base.modality, base.num_classes) == ("image", 10)
    # the same test images (standardized by another training set's statistics: one affine map apart)
    assert torch.equal(base.y_test, other_split.y_test)
    pair = torch.stack([base.x_test.flatten(), other_split.x_test.flatten()]).double()
    assert torch.corrcoef(pair)[0, 1] > 1 - 1e-9
    assert not torch.equal(base.y_train, other_split.y_train[:len(base.y_train)])
    assert not torch.equal(base.y_test, other_test.y_test)
    torch.testing.assert_close(base.x_train.mean(), torch.tensor(0.0), atol=1e-5, rtol=0)
    torch.testing.assert_close(base.x_train.std(), torch.tensor(1.0), atol=1e-5, rtol=0)
    assert len(load(make_cfg, "digits", None, "dataset.n_train=100").x_train) == 100


@pytest.mark.parametrize("name, expected", [
    ("mnist", "MNIST/raw/train-images-idx3-ubyte[.gz], which is missing: get it with `pip install "
              "torchvision` then `torchvision.datasets.MNIST("),
    ("fashion_mnist", "FashionMNIST/raw/train-images-idx3-ubyte[.gz], which is missing: get it with `pip "
                      "install torchvision` then `torchvision.datasets.FashionMNIST("),
    ("cifar10", "cifar-10-batches-py/data_batch_1, which is missing: get it with `pip install torchvision` "
                "then `torchvision.datasets.CIFAR10(")])
def test_missing_files_name_the_path_and_how_to_get_them(make_cfg, tmp_path, name, expected):
    with pytest.raises(ConfigError) as error:
        load(make_cfg, name, tmp_path)
    message = str(error.value)
    assert message.startswith(f"dataset={name} needs {tmp_path}/{expected}") and "\n" not in message


@pytest.mark.slow
def test_missing_files_are_one_line_and_exit_2_from_the_cli(tmp_path):
    done = run_cli("+suite=smoke", "dataset=fashion_mnist", f"dataset.data_dir={tmp_path}",
                   f"hydra.run.dir={tmp_path / 'run'}")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"regbench: error: dataset=fashion_mnist needs {tmp_path}/FashionMNIST/raw/train-images-idx3-ubyte[.gz], "
        f"which is missing: get it with `pip install torchvision` then `torchvision.datasets.FashionMNIST("
        f"'{tmp_path}', download=True)`, or download train-images-idx3-ubyte.gz by hand into "
        f"{tmp_path}/FashionMNIST/raw"]


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_or_foreign_idx_files_name_the_file(tmp_path, gz):
    images = write_idx(tmp_path / "train-images-idx3-ubyte", numbered_images(5, (28, 28), 0), gz)
    assert read_idx(images, IDX_IMAGES).shape == (5, 28, 28)
    with pytest.raises(ConfigError, match=f"^{images} is not an IDX file of 1-d unsigned bytes"):
        read_idx(images, IDX_LABELS)                                    # an images file read as labels
    images.write_bytes(images.read_bytes()[:-100])
    with pytest.raises(ConfigError, match=f"^{images} (is truncated|cannot be read)") as error:
        read_idx(images, IDX_IMAGES)
    assert "\n" not in str(error.value)


def test_truncated_or_foreign_cifar_batches_name_the_file(tmp_path):
    write_cifar(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(ConfigError, match=f"^{path} is not a CIFAR-10 python batch"):
        read_cifar_batch(path)
    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(ConfigError, match=f"^{path} is not a CIFAR-10 python batch: ValueError"):
        read_cifar_batch(path)


class Plant:
    def __reduce__(self):
        return (print, ("a pickle ran code",))


def test_a_cifar_batch_that_would_run_code_is_refused(tmp_path, capsys):
    path = tmp_path / "test_batch"
    path.write_bytes(pickle.dumps({b"data": Plant(), b"labels": []}))
    with pytest.raises(ConfigError, match=f"^{path} is not a CIFAR-10 python batch: UnpicklingError: "
                                          "builtins.print is not allowed"):
        read_cifar_batch(path)
    assert "ran code" not in capsys.readouterr().out


@pytest.mark.slow
def test_each_image_dataset_names_the_augmentations_that_keep_its_labels(make_cfg, tmp_path):
    """A mirrored digit can be another digit (2 / 5, 6 / 9 written loosely): no flip for digits and MNIST;
    CIFAR-10's photos keep their class when mirrored and shifted (pad-and-crop)."""
    write_cifar(tmp_path)
    write_idx_dataset(tmp_path, "MNIST")
    write_idx_dataset(tmp_path, "FashionMNIST")
    ops = {name: load(make_cfg, name, None if name == "digits" else tmp_path).augment_ops
           for name in ("digits", "mnist", "fashion_mnist", "cifar10")}
    assert all("flip" not in ops[name] for name in ("digits", "mnist", "fashion_mnist"))
    assert ops["digits"] == ("rotate", "blur")                 # 8x8 and centred: no translation either
    assert ops["mnist"] == ops["fashion_mnist"] == ("translate", "rotate", "blur")
    assert ops["cifar10"] == ("flip", "translate")


@pytest.mark.slow
def test_mnist_files_train_cnn2d_with_augment_from_the_command_line(tmp_path):
    """The published MNIST files (gzipped IDX) through the real CLI: a conv net, augmentation, accuracies."""
    write_idx_dataset(tmp_path / "data", "MNIST", n_train=60, n_test=20, gz=True)
    sweep = tmp_path / "sweep"
    done = run_cli("-m", "dataset=mnist", f"dataset.data_dir={tmp_path / 'data'}", "model=cnn2d",
                   "regularizer=none,augment", "trainer.epochs=2", "trainer.batch_size=16", "progress=false",
                   f"hydra.sweep.dir={sweep}")
    assert done.returncode == 0, done.stderr[-2000:]
    records = {r["technique"]: r for r in (json.loads(p.read_text()) for p in sweep.glob("*/metrics.json"))}
    assert sorted(records) == ["augment", "none"]
    for record in records.values():
        assert record["status"] == "completed" and record["dataset"] == "mnist" and record["model"] == "cnn2d"
        run, = record["runs"]
        assert all(0.0 <= run[f"{split}_acc"] <= 1.0 for split in ("train", "val", "test"))
    # augment draws from its own streams: same init and data order as `none`, so only the augmented
    # batches can make its training differ
    assert records["augment"]["runs"][0]["train_loss"] != records["none"]["runs"][0]["train_loss"]
    assert "augment" in done.stdout and "test acc" in done.stdout


@pytest.mark.slow
def test_a_missing_mnist_file_is_one_line_with_cnn2d_and_augment(tmp_path):
    write_idx_dataset(tmp_path, "MNIST")
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    done = run_cli("dataset=mnist", f"dataset.data_dir={tmp_path}", "model=cnn2d", "regularizer=augment",
                   f"hydra.run.dir={tmp_path / 'run'}")
    assert done.returncode == 2, done.stderr
    line, = done.stderr.strip().splitlines()
    assert line.startswith(f"regbench: error: dataset=mnist needs {tmp_path}/MNIST/raw/t10k-labels-idx1-ubyte[.gz], "
                           "which is missing"), line
    assert not (tmp_path / "run" / "metrics.json").exists()


def corrupt_gzip(root: Path) -> Path:
    write_idx_dataset(root, "MNIST", gz=True)
    path = root / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    raw = bytearray(path.read_bytes())
    raw[10] ^= 0xFF   # the first compressed byte, after gzip's 10-byte header: zlib's "invalid block type"
    path.write_bytes(bytes(raw))
    return path


def idx_file(stem: str, array: np.ndarray):
    def damage(root: Path) -> Path:
        write_idx_dataset(root, "MNIST")
        return write_idx(root / "MNIST" / "raw" / stem, array)
    return damage


def cifar_labels(labels: list):
    def damage(root: Path) -> Path:
        write_cifar(root)
        path = root / "cifar-10-batches-py" / "data_batch_2"
        path.write_bytes(pickle.dumps({**pickle.loads(path.read_bytes()), b"labels": labels}, protocol=2))
        return path
    return damage


@pytest.mark.parametrize("name, damage, expected", [
    ("mnist", corrupt_gzip, "cannot be read as an IDX file: Error -3 while decompressing data: invalid block type"),
    ("mnist", idx_file("t10k-labels-idx1-ubyte", np.r_[[3] * 11, 200]), "holds labels outside 0..9: 200 at example 11"),
    ("mnist", idx_file("train-labels-idx1-ubyte", np.r_[[10, 11], [0] * 28]),
     "holds labels outside 0..9: 10 at example 0 and 1 more"),
    ("mnist", idx_file("train-images-idx3-ubyte", numbered_images(30, (32, 32), 0)),
     "holds images of 32x32 pixels, expected 28x28"),
    ("cifar10", cifar_labels([0, 1, 10, 2]), "holds labels outside 0..9: 10 at example 2"),
    ("cifar10", cifar_labels([0, -1, 2, 3]), "holds labels outside 0..9: -1 at example 1"),
    ("cifar10", cifar_labels([0, 1.5, 2, 3]), "holds float64 labels, expected integers 0..9")],
    ids=["corrupt gzip", "idx label 200", "idx labels 10 and 11", "idx 32x32 images", "cifar label 10",
         "cifar label -1", "cifar label 1.5"])
def test_a_file_with_wrong_contents_is_one_line_naming_it(make_cfg, tmp_path, name, damage, expected):
    """Found when the data loads, before anything trains: not a zlib traceback, nor a loss that fails on
    a label mid-training (or an int cast that turns label 1.5 into class 1)."""
    path = damage(tmp_path)
    with pytest.raises(ConfigError) as error:
        load(make_cfg, name, tmp_path)
    assert str(error.value) == f"{path} {expected}"


@pytest.mark.slow
def test_a_label_out_of_range_is_one_line_and_exit_2_from_the_cli(tmp_path):
    write_idx_dataset(tmp_path, "MNIST", gz=True)
    path = write_idx(tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte", np.r_[np.arange(29) % 10, 200], gz=True)
    done = run_cli("+suite=smoke", "dataset=mnist", f"dataset.data_dir={tmp_path}", "dataset.n_train=null",
                   f"hydra.run.dir={tmp_path / 'run'}")
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [f"regbench: error: {path} holds labels outside 0..9: 200 at example 29"]
    assert not (tmp_path / "run" / "metrics.json").exists()
