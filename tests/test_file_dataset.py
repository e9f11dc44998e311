"""dataset=file: a user's .npz or .csv. Bad files are one ConfigError naming dataset.path and the file;
labels become 0..K-1, float targets a regression; the task and modality are inferred; standardization
uses training statistics (of the inputs and of regression targets)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from regbench.config import ConfigError
from regbench.experiment import Experiment
from tests.conftest import run_cli


def two_classes(n: int = 700, features: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A separable 2-class problem: y = [x0 + x1 > 0]."""
    x = np.random.default_rng(seed).normal(size=(n, features)).astype(np.float32)
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.int64)


def write_csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def load(make_cfg, path, *overrides):
    return Experiment.from_config(make_cfg("dataset=file", f"dataset.path={path}", *overrides)).dataset.load()


def test_npz_labels_are_mapped_to_0_k_in_sorted_order_and_the_test_split_is_seeded(make_cfg, tmp_path):
    x, y = two_classes(300)
    labels = np.array([3, 7, 9])[y + (x[:, 2] > 1)]   # three classes with labels 3, 7, 9
    np.savez(tmp_path / "d.npz", x=x, y=labels)
    data = load(make_cfg, tmp_path / "d.npz", "dataset.n_train=null", "dataset.standardize=false")
    assert (data.num_classes, data.classes, data.modality, data.input_shape) == (3, [3, 7, 9], "tabular", (10,))
    assert len(data.x_test) == 60 and len(data.x_train) + len(data.x_val) == 240
    back = {tuple(row): label for row, label in zip(x.tolist(), labels.tolist())}
    for split in ("train", "val", "test"):
        rows, codes = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        assert [back[tuple(r)] for r in rows.tolist()] == [data.classes[c] for c in codes.tolist()]
    again = load(make_cfg, tmp_path / "d.npz", "dataset.n_train=null", "dataset.split_seed=5")
    assert torch.equal(again.y_test, data.y_test)                      # one test set for every split_seed
    other = load(make_cfg, tmp_path / "d.npz", "dataset.n_train=null", "dataset.test_seed=1")
    assert not torch.equal(other.y_test, data.y_test)


def test_npz_with_its_own_test_split_keeps_it_and_is_standardized_on_train(make_cfg, tmp_path):
    x, y = two_classes(400)
    x_test, y_test = x[:50] * 10 + 100, y[:50]      # far off: its statistics must not be used
    np.savez(tmp_path / "d.npz", x=x[50:], y=y[50:], x_test=x_test, y_test=y_test)
    data = load(make_cfg, tmp_path / "d.npz", "dataset.n_train=null")
    raw = load(make_cfg, tmp_path / "d.npz", "dataset.n_train=null", "dataset.standardize=false")
    assert torch.equal(raw.x_test, torch.as_tensor(x_test)) and len(raw.x_train) + len(raw.x_val) == 350
    mean, std = raw.x_train.mean(0), raw.x_train.std(0)
    for split in ("x_train", "x_val", "x_test"):
        torch.testing.assert_close(getattr(data, split), (getattr(raw, split) - mean) / std)


@pytest.mark.parametrize("shape, modality", [((10,), "tabular"), ((2, 12), "signal"), ((1, 5, 5), "image")])
def test_modality_is_inferred_from_the_shape_of_x(make_cfg, tmp_path, shape, modality):
    x = np.random.default_rng(0).normal(size=(100, *shape))
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(100) % 2)
    data = load(make_cfg, tmp_path / "d.npz", "dataset.n_train=null")
    assert (data.modality, data.input_shape) == (modality, shape)
    if shape == (10,):   # a 2-D x is a signal only when the user says so
        assert load(make_cfg, tmp_path / "d.npz", "dataset.n_train=null", "dataset.modality=signal").modality == "signal"


def test_csv_string_labels_in_any_column(make_cfg, tmp_path):
    rows = [f"{i % 5},{'cat' if i % 2 else 'bird'},{i * 0.5}" for i in range(60)]
    path = write_csv(tmp_path / "d.csv", "a,animal,b", rows)
    data = load(make_cfg, path, "dataset.n_train=null", "dataset.label_column=animal", "dataset.standardize=false")
    assert (data.classes, data.input_shape, data.modality) == (["bird", "cat"], (2,), "tabular")
    x = torch.cat([data.x_train, data.x_val, data.x_test])
    y = torch.cat([data.y_train, data.y_val, data.y_test])
    assert all(int(row[1] / 0.5) % 2 == label for row, label in zip(x.tolist(), y.tolist()))


def bad_files(tmp: Path) -> dict[str, Path]:
    x, y = two_classes(100)
    files = {}

    def npz(name, **arrays):
        np.savez(tmp / name, **arrays)
        return tmp / name
    files["missing"] = tmp / "nowhere.npz"
    files["extension"] = tmp / "d.txt"
    files["extension"].write_text("1,2\n")
    files["no_y"] = npz("no_y.npz", x=x)
    files["no_x"] = npz("no_x.npz", y=y)
    files["length"] = npz("length.npz", x=x, y=y[:90])
    files["x_test_alone"] = npz("x_test_alone.npz", x=x, y=y, x_test=x[:5])
    nan = x.copy()
    nan[3, 4] = np.nan
    files["nan"] = npz("nan.npz", x=nan, y=y)
    inf = x.copy()
    inf[0, 0] = np.inf
    files["inf"] = npz("inf.npz", x=inf, y=y)
    files["text_y"] = npz("text_y.npz", x=x, y=np.array(["a", "b"])[y])
    files["y_3d"] = npz("y_3d.npz", x=x, y=np.zeros((100, 2, 2)))
    files["y_test_width"] = npz("y_test_width.npz", x=x, y=np.zeros((100, 2)), x_test=x[:5], y_test=np.zeros((5, 3)))
    files["two_d_labels"] = npz("two_d_labels.npz", x=x, y=np.stack([y, y], 1))
    files["one_class"] = npz("one_class.npz", x=x, y=np.zeros(100, dtype=np.int64))
    files["x_1d"] = npz("x_1d.npz", x=x[:, 0], y=y)
    files["test_shape"] = npz("test_shape.npz", x=x, y=y, x_test=x[:5, :3], y_test=y[:5])
    whole = npz("whole.npz", x=x, y=y).read_bytes()
    files["truncated"] = tmp / "truncated.npz"
    files["truncated"].write_bytes(whole[: len(whole) // 2])
    files["empty_npz"] = tmp / "empty.npz"
    files["empty_npz"].write_bytes(b"")
    files["text_npz"] = tmp / "text.npz"
    files["text_npz"].write_text("x,y\n1,0\n2,1\n")
    files["npy_npz"] = tmp / "one_array.npz"
    np.save(tmp / "one_array.npy", x)
    (tmp / "one_array.npy").rename(files["npy_npz"])
    files["empty_csv"] = tmp / "empty.csv"
    files["empty_csv"].write_text("")
    files["header_only"] = write_csv(tmp / "header_only.csv", "a,b,label", [])
    files["text_feature"] = write_csv(tmp / "text.csv", "a,colour,label", ["1,red,0", "2,blue,1"])
    files["csv_nan"] = write_csv(tmp / "csv_nan.csv", "a,b,label", ["1,nan,0", "2,3,1"])
    files["ragged"] = write_csv(tmp / "ragged.csv", "a,b,label", ["1,2,0", "2,1"])
    files["label_column"] = write_csv(tmp / "label.csv", "a,b,label", ["1,2,0", "2,1,1"])
    files["text_label"] = write_csv(tmp / "text_label.csv", "a,b,target", ["1,2,cat", "2,1,dog"])
    files["dir"] = tmp / "adir.npz"
    files["dir"].mkdir()
    return files


# (file, extra overrides, text the message must contain besides the file's path)
BAD = [
    ("missing", [], "does not exist"),
    ("extension", [], "extension '.txt'"),
    ("dir", [], "is not a file"),
    ("no_y", [], "has no array 'y'"),
    ("no_x", [], "has no array 'x'"),
    ("length", [], "x has 100 examples but y has 90"),
    ("x_test_alone", [], "has x_test without y_test"),
    ("nan", [], "x holds NaN or inf"),
    ("inf", [], "x holds NaN or inf"),
    ("text_y", ["dataset.task=regression"], "dataset.task=regression needs numeric targets"),
    ("y_3d", [], "y has shape (100, 2, 2): expected regression targets"),
    ("y_test_width", [], "y_test has targets of shape (3,), y of shape (2,)"),
    ("two_d_labels", [], "y has shape (100, 2): expected one label per example"),
    ("one_class", [], "one class"),
    ("x_1d", [], "x has shape (100,)"),
    ("test_shape", [], "x_test has examples of shape (3,)"),
    ("truncated", [], "is not a readable .npz"),
    ("empty_npz", [], "is empty, not an .npz archive: save x and y with numpy.savez("),
    ("text_npz", [], "is a text file, not an .npz archive: save x and y with numpy.savez("),
    ("npy_npz", [], "is a single .npy array, not an .npz archive"),
    ("empty_csv", [], "is empty"),
    ("header_only", [], "no examples"),
    ("text_feature", [], "column 'colour' is not numeric"),
    ("csv_nan", [], "x holds NaN or inf"),
    ("ragged", [], "line 3 has 2 fields"),
    ("label_column", ["dataset.label_column=species"], "dataset.label_column=species is not a column"),
    ("text_label", ["dataset.task=regression"], "dataset.task=regression needs numeric targets"),
    ("label_column", ["dataset.task=regression", "dataset.label_noise=0.1"], "dataset.label_noise=0.1 is not allowed"),
    ("label_column", ["dataset.modality=image"], "dataset.modality=image does not fit x of shape (2, 2)"),
    ("no_y", ["dataset.label_column=y"], "dataset.label_column applies to .csv files only"),
]


@pytest.mark.parametrize("name, overrides, message", BAD, ids=[f"{c[0]}{'+' if c[1] else ''}{' '.join(c[1])}" for c in BAD])
def test_a_bad_file_is_one_config_error_naming_the_file(make_cfg, tmp_path, name, overrides, message):
    path = bad_files(tmp_path)[name]
    with pytest.raises(ConfigError) as error:
        load(make_cfg, path, *overrides)
    text = str(error.value)
    assert message in text and str(path) in text and "dataset." in text and "\n" not in text, text
    assert "pickle" not in text   # numpy's advice for a file it took for a pickle


def test_path_is_required_and_tilde_is_expanded(make_cfg, tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="^dataset.path is required"):
        Experiment.from_config(make_cfg("dataset=file"))
    monkeypatch.setenv("HOME", str(tmp_path))
    x, y = two_classes(100)
    np.savez(tmp_path / "home.npz", x=x, y=y)
    # Hydra's override grammar needs ~ quoted: dataset.path='~/home.npz'
    assert len(load(make_cfg, "'~/home.npz'", "dataset.n_train=null").x_test) == 20


# Through the real command line: one line on stderr, exit 2, no traceback, nothing written.
CLI_BAD = [("missing", [], "does not exist"), ("truncated", [], "is not a readable .npz"),
           ("text_feature", [], "column 'colour' is not numeric"), (None, [], "dataset.path is required")]


@pytest.mark.slow
@pytest.mark.parametrize("name, overrides, message", CLI_BAD, ids=[str(c[0]) for c in CLI_BAD])
def test_a_bad_file_on_the_command_line_is_one_line_and_exit_2(tmp_path, name, overrides, message):
    (tmp_path / "in").mkdir()
    files = bad_files(tmp_path / "in")
    path = [] if name is None else [f"dataset.path={files[name]}"]
    run_dir = tmp_path / "run"
    done = run_cli("+suite=smoke", "dataset=file", *path, *overrides, f"hydra.run.dir={run_dir}")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("regbench: error:") and message in lines[0], done.stderr
    assert name is None or str(files[name]) in lines[0]
    assert "Traceback" not in done.stdout + done.stderr
    assert not (run_dir / "metrics.json").exists()


def leaderboard_row(run_dir: Path, done) -> dict:
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "completed" and record["dataset"] == "file"
    assert "none" in done.stdout and "dataset=file" in done.stdout
    return record


@pytest.mark.slow
def test_a_users_npz_runs_end_to_end(tmp_path):
    x, y = two_classes(700)
    np.savez(tmp_path / "mine.npz", x=x, y=y)
    run_dir = tmp_path / "run"
    done = run_cli(f"dataset.path={tmp_path / 'mine.npz'}", "dataset=file", "model=mlp", "+suite=smoke",
                   f"hydra.run.dir={run_dir}")
    record = leaderboard_row(run_dir, done)
    assert len(record["runs"]) == 2 and all(run["test_acc"] > 0.7 for run in record["runs"])
    assert str(tmp_path / "mine.npz") in done.stdout   # the path is in the setting: part of the identity


@pytest.mark.slow
def test_a_users_csv_runs_end_to_end(tmp_path):
    x, y = two_classes(700, features=4)
    rows = [",".join(f"{v:.5f}" for v in row) + f",{'yes' if label else 'no'}" for row, label in zip(x, y)]
    path = write_csv(tmp_path / "mine.csv", "f1,f2,f3,f4,answer", rows)
    run_dir = tmp_path / "run"
    done = run_cli("dataset=file", f"dataset.path={path}", "model=mlp", "+suite=smoke", f"hydra.run.dir={run_dir}")
    record = leaderboard_row(run_dir, done)
    assert all(run["test_acc"] > 0.7 for run in record["runs"])


def linear_targets(n: int = 700, features: int = 6, width: int | None = None, seed: int = 0):
    """A regression problem: y = x @ w + small noise, float targets (N,) or (N, width)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype(np.float32)
    w = rng.normal(size=(features, width or 1))
    y = x @ w + 0.1 * rng.normal(size=(n, width or 1))
    return x, (y[:, 0] if width is None else y)


def test_float_targets_are_a_regression_standardized_with_training_statistics(make_cfg, tmp_path):
    x, y = linear_targets(300)
    y_test = y[:40] * 10 + 100                          # far off: its statistics must not be used
    np.savez(tmp_path / "r.npz", x=x[40:], y=y[40:] * 3 + 5, x_test=x[:40], y_test=y_test)
    data = load(make_cfg, tmp_path / "r.npz")
    raw = load(make_cfg, tmp_path / "r.npz", "dataset.standardize=false")
    assert (data.task, data.num_classes, data.output_size, data.classes) == ("regression", 0, 1, None)
    assert raw.y_train.dtype == torch.float32 and raw.y_train.shape == (len(raw.x_train),)
    torch.testing.assert_close(raw.y_test, torch.as_tensor(y_test, dtype=torch.float32))
    mean, std = raw.y_train.mean(), raw.y_train.std()
    for split in ("y_train", "y_val", "y_test"):
        torch.testing.assert_close(getattr(data, split), (getattr(raw, split) - mean) / std)
    x_mean, x_std = raw.x_train.mean(0), raw.x_train.std(0)
    torch.testing.assert_close(data.x_test, (raw.x_test - x_mean) / x_std)


@pytest.mark.slow
def test_the_task_can_be_set_and_targets_can_be_columns(make_cfg, tmp_path):
    x, y = two_classes(200)
    np.savez(tmp_path / "ints.npz", x=x, y=y * 7)           # integers read as a regression when asked
    data = load(make_cfg, tmp_path / "ints.npz", "dataset.task=regression", "dataset.standardize=false")
    assert data.task == "regression" and set(data.y_train.tolist()) == {0.0, 7.0}
    np.savez(tmp_path / "floats.npz", x=x, y=y.astype(np.float64))   # labels stored as 0.0 / 1.0
    assert load(make_cfg, tmp_path / "floats.npz").task == "regression"
    labels = load(make_cfg, tmp_path / "floats.npz", "dataset.task=classification")
    assert (labels.task, labels.num_classes, labels.classes) == ("classification", 2, [0.0, 1.0])
    x, y = linear_targets(200, width=3)
    np.savez(tmp_path / "wide.npz", x=x, y=y)
    wide = load(make_cfg, tmp_path / "wide.npz")
    assert (wide.output_size, wide.y_train.shape[1], wide.y_test.shape) == (3, 3, (40, 3))


def regression_row(run_dir: Path, done) -> dict:
    record = leaderboard_row(run_dir, done)
    assert "test loss" in done.stdout
    for run in record["runs"]:
        assert run["train_acc"] is None and run["test_acc"] is None and run["gap_acc"] is None
        assert run["gap_loss"] == pytest.approx(run["test_loss"] - run["train_loss"])
        assert run["test_loss"] < 0.2      # standardized targets: predicting the mean scores about 1
    return record


# A squared-error loss needs a smaller rate than the MNIST-1D default 0.05 (docs/plugins.md, Your own data)
REGRESSION_TRAINER = ("trainer.lr=0.01", "trainer.epochs=10")


@pytest.mark.slow
def test_a_users_regression_npz_runs_end_to_end(tmp_path):
    x, y = linear_targets()
    np.savez(tmp_path / "mine.npz", x=x, y=y)
    run_dir = tmp_path / "run"
    done = run_cli("dataset=file", f"dataset.path={tmp_path / 'mine.npz'}", "model=mlp", "+suite=smoke",
                   *REGRESSION_TRAINER, f"hydra.run.dir={run_dir}")
    assert len(regression_row(run_dir, done)["runs"]) == 2


@pytest.mark.slow
def test_a_users_regression_csv_runs_end_to_end(tmp_path):
    x, y = linear_targets(features=4)
    rows = [",".join(f"{v:.5f}" for v in row) + f",{target:.5f}" for row, target in zip(x, y)]
    path = write_csv(tmp_path / "mine.csv", "f1,f2,f3,f4,price", rows)
    run_dir = tmp_path / "run"
    done = run_cli("dataset=file", f"dataset.path={path}", "model=mlp", "+suite=smoke", *REGRESSION_TRAINER,
                   f"hydra.run.dir={run_dir}")
    regression_row(run_dir, done)
