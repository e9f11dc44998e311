"""A user's own arrays: `.npz` (x, y, optional x_test, y_test) or `.csv` (a header, one label column).

The task is read from y (task=auto): integer, boolean or string labels are classes (renumbered 0..K-1),
float targets a regression, (N,) or (N, D); or it is set with task=classification|regression. Regression
targets, like the inputs, are standardized with the training split's mean and std (standardize=true).

Every mistake in the file is one ConfigError naming `dataset.path`, the file and what is wrong. The file's
path is part of a result's identity (it is a config value); its content is not hashed, so the same file
moved elsewhere is another result and a file rewritten in place is not (keep input files immutable).
"""
from __future__ import annotations

import csv
import dataclasses
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from regbench.config import ConfigError, check_choice
from regbench.data.base import Data, HeldOutTest
from regbench.data.tabular import encode_labels, standardize

TASKS = ("auto", "classification", "regression")
MODALITIES = ("auto", "signal", "image", "tabular")
# input dims (after the example axis) each modality accepts; auto picks by dims: 1 tabular, 2 signal, 3 image
DIMS = {"tabular": (1,), "signal": (1, 2), "image": (2, 3)}
AUTO_MODALITY = {1: "tabular", 2: "signal", 3: "image"}
SUFFIXES = (".npz", ".csv")


@dataclass
class FileData(HeldOutTest):
    """test_fraction / test_seed (HeldOutTest) apply only when the file has no x_test / y_test."""
    path: str = "???"
    task: str = "auto"
    modality: str = "auto"
    standardize: bool = True
    label_column: str | None = None   # csv only; null = the last column

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.path, str) or self.path in ("", "???"):
            raise ConfigError("dataset.path is required for dataset=file: give dataset.path=FILE.npz or FILE.csv")
        check_choice("dataset.task", self.task, TASKS)
        check_choice("dataset.modality", self.modality, MODALITIES)
        check_choice("dataset.standardize", self.standardize, (True, False))
        file = self.file
        if file.suffix.lower() not in SUFFIXES:
            self.fail(f"has extension {file.suffix or '(none)'!r}: expected .npz or .csv")
        if not file.is_file():
            self.fail("does not exist" if not file.exists() else "is not a file")
        if self.label_column is not None and file.suffix.lower() != ".csv":
            self.fail("is not a .csv: dataset.label_column applies to .csv files only")

    @property
    def file(self) -> Path:
        return Path(os.path.expanduser(self.path))

    def fail(self, what: str) -> None:
        raise ConfigError(f"dataset.path={self.path}: {what}")

    def load(self) -> Data:
        x, y, x_test, y_test = self.read_npz() if self.file.suffix.lower() == ".npz" else self.read_csv()
        task = self.pick_task(y)
        self.check_arrays(x, y, "x", "y", task)
        if x_test is not None:
            self.check_arrays(x_test, y_test, "x_test", "y_test", task)
            if x_test.shape[1:] != x.shape[1:]:
                self.fail(f"x_test has examples of shape {x_test.shape[1:]}, x of shape {x.shape[1:]}")
            if task == "regression" and y_test.shape[1:] != y.shape[1:]:
                self.fail(f"y_test has targets of shape {y_test.shape[1:]}, y of shape {y.shape[1:]}")
            if task == "regression" and y_test.dtype.kind not in "biuf":
                self.fail(f"y_test holds {y_test.dtype} values: regression targets must be numbers")
        modality = self.pick_modality(x)
        if task == "regression":
            return self.regression(x, y, x_test, y_test, modality)
        y, y_test_codes, classes = encode_labels(y, y_test)
        if x_test is None:
            x, y, x_test, y_test_codes = self.carve_test(x, y)
        if len(classes) < 2:
            self.fail(f"y holds one class ({classes[0]!r}): classification needs at least 2")
        data = self.split(self.file.stem, x.astype(np.float32), y, x_test.astype(np.float32), y_test_codes,
                          num_classes=len(classes), modality=modality)
        data = dataclasses.replace(data, classes=classes)
        return standardize(data) if self.standardize else data

    def regression(self, x: np.ndarray, y: np.ndarray, x_test: np.ndarray | None, y_test: np.ndarray | None,
                   modality: str) -> Data:
        """Float targets (N,) or (N, D); with `standardize` inputs and targets are scaled by the training
        split's statistics only."""
        if self.label_noise:
            raise ConfigError(f"dataset.label_noise={self.label_noise!r} is not allowed: {self.path} holds "
                              "regression targets, which have no classes to flip labels between; leave it 0")
        y = y.astype(np.float64)
        if x_test is None:
            x, y, x_test, y_test = self.carve_test(x, y)
        data = self.split(self.file.stem, x.astype(np.float32), y, x_test.astype(np.float32),
                          y_test.astype(np.float64), num_classes=0, modality=modality, task="regression")
        return standardize(data, targets=True) if self.standardize else data

    def read_npz(self) -> tuple:
        self.check_npz_archive()
        try:
            with np.load(self.file, allow_pickle=False) as stored:
                arrays = {key: stored[key] for key in stored.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as error:
            self.fail(f"is not a readable .npz ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else 'empty'})")
        missing = [key for key in ("x", "y") if key not in arrays]
        if missing:
            self.fail(f"has no array {missing[0]!r} (it holds {', '.join(sorted(arrays)) or 'nothing'}): "
                      "expected x, y and optionally x_test, y_test")
        if ("x_test" in arrays) != ("y_test" in arrays):
            given, lacking = ("x_test", "y_test") if "x_test" in arrays else ("y_test", "x_test")
            self.fail(f"has {given} without {lacking}: give both or neither (then a test split is carved)")
        return arrays["x"], arrays["y"], arrays.get("x_test"), arrays.get("y_test")

    def check_npz_archive(self) -> None:
        """An .npz is a zip of .npy arrays (np.savez); say what the file is instead when it is not one
        (numpy would otherwise read it as a pickle and advise allow_pickle)."""
        try:
            with open(self.file, "rb") as stream:
                start = stream.read(512)
        except OSError as error:
            self.fail(f"cannot be read ({error.strerror or error})")
        if start.startswith((b"PK\x03\x04", b"PK\x05\x06")):   # a zip (an empty one ends at once)
            return
        save = "save x and y with numpy.savez(FILE.npz, x=x, y=y)"
        if start.startswith(b"\x93NUMPY"):
            self.fail(f"is a single .npy array, not an .npz archive: {save}")
        if not start:
            self.fail(f"is empty, not an .npz archive: {save}")
        try:
            start.decode("utf-8")
        except UnicodeDecodeError:
            self.fail(f"is not an .npz archive (a zip of .npy arrays): {save}")
        self.fail(f"is a text file, not an .npz archive: {save}, or name a table FILE.csv")

    def read_csv(self) -> tuple:
        try:
            with open(self.file, newline="") as handle:
                rows = [row for row in csv.reader(handle) if row]
        except (OSError, UnicodeDecodeError, csv.Error) as error:
            self.fail(f"is not a readable .csv ({type(error).__name__}: {error})")
        if not rows:
            self.fail("is empty: expected a header line and one line per example")
        header, body = [name.strip() for name in rows[0]], rows[1:]
        if not body:
            self.fail("has a header but no examples")
        label = header[-1] if self.label_column is None else self.label_column
        if label not in header:
            raise ConfigError(f"dataset.label_column={label} is not a column of {self.path} "
                              f"(its columns: {', '.join(header)})")
        for number, row in enumerate(body, start=2):
            if len(row) != len(header):
                self.fail(f"line {number} has {len(row)} fields, the header {len(header)}")
        columns = list(zip(*body))
        at = header.index(label)
        features = []
        for name, values in zip(header, columns):
            if name == label:
                continue
            try:
                features.append([float(v) for v in values])
            except ValueError:
                bad = next(v for v in values if not is_float(v))
                self.fail(f"column {name!r} is not numeric (e.g. {bad!r}): features must be numbers")
        if not features:
            self.fail(f"has no feature columns besides the label column {label!r}")
        return np.array(features, dtype=np.float64).T, parse_labels(columns[at]), None, None

    def check_arrays(self, x: np.ndarray, y: np.ndarray, x_name: str, y_name: str, task: str) -> None:
        if x.ndim < 2 or len(x) == 0:
            self.fail(f"{x_name} has shape {x.shape}: expected (examples, features...) with examples > 0")
        if task == "classification" and y.ndim != 1:
            self.fail(f"{y_name} has shape {y.shape}: expected one label per example, shape ({len(x)},)")
        if task == "regression" and y.ndim not in (1, 2):
            self.fail(f"{y_name} has shape {y.shape}: expected regression targets of shape ({len(x)},) or "
                      f"({len(x)}, D)")
        if len(x) != len(y):
            self.fail(f"{x_name} has {len(x)} examples but {y_name} has {len(y)}")
        if x.dtype.kind not in "biuf":
            self.fail(f"{x_name} holds {x.dtype} values: expected numbers")
        if not np.isfinite(x).all():
            self.fail(f"{x_name} holds NaN or inf values ({int((~np.isfinite(x)).sum())} of them)")
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            self.fail(f"{y_name} holds NaN or inf values")

    def pick_task(self, y: np.ndarray) -> str:
        """auto: integers, booleans or strings are class labels; floats are regression targets."""
        if self.task == "auto":
            return "regression" if y.dtype.kind == "f" else "classification"
        if self.task == "regression" and y.dtype.kind not in "biuf":
            raise ConfigError(f"dataset.task=regression needs numeric targets: y in {self.path} holds "
                              f"{y.dtype} values (e.g. {y.reshape(-1)[0]!r}); use dataset.task=classification "
                              "for class labels")
        return self.task

    def pick_modality(self, x: np.ndarray) -> str:
        dims = x.ndim - 1
        if self.modality == "auto":
            if dims not in AUTO_MODALITY:
                self.fail(f"x has shape {x.shape}: expected (N, F) tabular, (N, C, L) signal or (N, C, H, W) image")
            return AUTO_MODALITY[dims]
        if dims not in DIMS[self.modality]:
            raise ConfigError(f"dataset.modality={self.modality} does not fit x of shape {x.shape} in {self.path}: "
                              "tabular is (N, F), signal (N, L) or (N, C, L), image (N, H, W) or (N, C, H, W)")
        return self.modality


def is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_labels(values: tuple[str, ...]) -> np.ndarray:
    """A CSV label column: integers if every value is one, else floats if every value is one, else strings."""
    stripped = [v.strip() for v in values]
    for kind in (int, float):
        try:
            return np.array([kind(v) for v in stripped])
        except ValueError:
            continue
    return np.array(stripped)
