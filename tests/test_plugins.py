"""Plug-ins: a dataset, a model and a technique from another distribution, found through entry points.

The working plug-in is a real package, built and installed offline (`pip install --no-index --no-deps
--no-build-isolation --target`, with the venv's setuptools), and run through the real CLI. The broken
ones are bare `.dist-info` folders written by hand: entry point metadata is all they need to be found.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from regbench import plugins
from regbench.config import ConfigError
from regbench.data import DATASETS
from regbench.models import MODELS
from regbench.regularizers import REGULARIZERS
from tests.conftest import run_cli

PYPROJECT = """
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "regbench-demo-plugin"
version = "0.1"

[project.entry-points."regbench.datasets"]
blobs = "demo_plugin.parts:Blobs"
[project.entry-points."regbench.models"]
linear = "demo_plugin.parts:Linear"
[project.entry-points."regbench.regularizers"]
shrink = "demo_plugin.parts:Shrink"

[tool.setuptools]
packages = ["demo_plugin"]
[tool.setuptools.package-data]
demo_plugin = ["*/*.yaml"]
"""

PARTS = '''
"""Two Gaussian blobs, a linear classifier, and a technique that shrinks every parameter."""
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from regbench.config import check_number
from regbench.data import Data
from regbench.models import ModelSpec
from regbench.trainer import Params, Regularizer


@dataclass
class Blobs:
    n: int = 100            # examples in each of train, val and test
    shift: float = 2.0      # distance between the classes' means
    data_seed: int = 0

    def __post_init__(self) -> None:
        check_number("dataset.n", self.n, low=1, integer=True)

    def load(self) -> Data:
        rng = np.random.default_rng(self.data_seed)
        y = rng.integers(0, 2, 3 * self.n)
        x = rng.standard_normal((3 * self.n, 4)) + self.shift * y[:, None]
        x, y = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y)
        train, val, test = (slice(i * self.n, (i + 1) * self.n) for i in range(3))
        return Data("blobs", x[train], y[train], x[val], y[val], x[test], y[test],
                    num_classes=2, modality="tabular")


@dataclass
class Linear(ModelSpec):
    name: ClassVar[str] = "linear"
    input_shapes: ClassVar[str] = "inputs of any shape (flattened)"

    def accepts(self, input_shape) -> bool:
        return True

    def build(self, input_shape, num_classes) -> nn.Module:
        return self.initialize(nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), num_classes)))


@dataclass
class Shrink(Regularizer):
    """After each step p <- (1 - factor) p for every parameter; factor=1 zeroes the network."""
    factor: float = 1.0
    name = "shrink"

    def __post_init__(self) -> None:
        check_number("regularizer.shrink.factor", self.factor, low=0.0, high=1.0)

    @torch.no_grad()
    def after_step(self, params: Params, lr: float) -> None:
        for value in params.values():
            value.mul_(1.0 - self.factor)
'''

OPTION_FILES = {
    "dataset/blobs.yaml": "name: blobs\nn: 100\nshift: 2.0\ndata_seed: 0\n",
    "model/linear.yaml": "name: linear\ninit: he\n",
    "regularizer/shrink.yaml": "# @package regularizer.shrink\nname: shrink\nfactor: 1.0\n",
}
RUN = ["dataset=blobs", "model=linear", "trainer.epochs=5", "threads=1"]


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text).lstrip())
    return root


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The demo plug-in installed into a plain folder, its option files inside the package as well."""
    root = tmp_path_factory.mktemp("plugin")
    source = write(root / "source", {"pyproject.toml": PYPROJECT, "demo_plugin/__init__.py": "",
                                     "demo_plugin/parts.py": PARTS,
                                     **{f"demo_plugin/{name}": text for name, text in OPTION_FILES.items()}})
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--no-build-isolation",
                           "--disable-pip-version-check", "--quiet", "--target", str(root / "site"), str(source)],
                          capture_output=True, text=True, timeout=300, cwd=root)
    assert done.returncode == 0, done.stderr
    return root / "site"


@pytest.mark.slow
def test_a_plugin_runs_from_its_config_dir_and_is_labelled_by_its_name(site, tmp_path):
    config_dir = write(tmp_path / "myconf", OPTION_FILES)
    done = run_cli("--config-dir", str(config_dir), *RUN, "regularizer=shrink", f"hydra.run.dir={tmp_path / 'run'}",
                   env={"PYTHONPATH": str(site)})
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["status"] == "completed" and record["technique"] == "shrink"
    # a zeroed network gives both classes the same logit: cross-entropy log 2 on every example
    assert [run["train_loss"] for run in record["runs"]] == [pytest.approx(math.log(2), abs=1e-6)]
    # compared with the plug-in's own option files, not with nothing: only the epochs differ
    assert record["labels"] == {"dataset": "blobs", "model": "linear", "setting": "trainer.epochs=5"}


@pytest.mark.slow
def test_a_sweep_over_a_plugin_and_its_baseline_from_a_package_search_path(site, tmp_path):
    sweep = tmp_path / "sweep"
    done = run_cli("-m", "hydra.searchpath=[pkg://demo_plugin]", *RUN, "regularizer=none,shrink", "replicates=2",
                   f"hydra.sweep.dir={sweep}", env={"PYTHONPATH": str(site)})
    assert done.returncode == 0, done.stderr
    board = pd.read_csv(sweep / "leaderboard.csv", keep_default_na=False).set_index("technique")
    assert sorted(board.index) == ["none", "shrink"]
    assert set(board.dataset) == {"blobs"} and set(board.model) == {"linear"}
    assert set(board.setting) == {"trainer.epochs=5"}
    records = {r["technique"]: r for r in (json.loads(p.read_text()) for p in sweep.glob("*/metrics.json"))}
    train_loss = {name: [run["train_loss"] for run in r["runs"]] for name, r in records.items()}
    assert train_loss["shrink"] == [pytest.approx(math.log(2), abs=1e-6)] * 2
    assert max(train_loss["none"]) < 0.6 * math.log(2)  # unshrunk, a linear model learns to part the blobs


@pytest.mark.slow
def test_help_lists_installed_plugins_and_options_on_the_search_path(site, tmp_path):
    config_dir = write(tmp_path / "myconf", OPTION_FILES)
    done = run_cli("--config-dir", str(config_dir), "--help", env={"PYTHONPATH": str(site)})
    assert done.returncode == 0, done.stderr
    assert "dataset: blobs, breast_cancer," in done.stdout  # the option file in --config-dir
    for line in ("dataset: blobs (regbench-demo-plugin)", "model: linear (regbench-demo-plugin)",
                 "regularizer: shrink (regbench-demo-plugin)"):
        assert line in done.stdout


def broken_site(root: Path, group: str, entry: str) -> Path:
    """A hand-written distribution `demo-broken` 0.1 whose only content is one entry point."""
    info = root / "demo_broken-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-broken\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{entry}\n")
    return root


@pytest.mark.parametrize("group, entry, says", [
    ("regbench.datasets", "digits = demo_broken:Digits", "takes the name of the built-in dataset digits"),
    ("regbench.models", "broken = no_such_module_here:Net",
     "could not be imported: ModuleNotFoundError: No module named 'no_such_module_here'"),
    ("regbench.regularizers", "decoder = json:JSONDecoder",
     "is <class 'json.decoder.JSONDecoder'>, not a regularizer plug-in: expected a dataclass subclass of "
     "regbench.trainer.Regularizer whose class attribute `name` is 'decoder'"),
    ("regbench.models", "shrunk = regbench.regularizers.l2:L2", "not a model plug-in"),
])
def test_a_broken_plugin_is_refused_naming_its_entry_point_and_distribution(tmp_path, monkeypatch, group,
                                                                           entry, says):
    monkeypatch.syspath_prepend(str(broken_site(tmp_path, group, entry)))
    monkeypatch.setattr(plugins, "_loaded", False)  # an earlier test's job may have loaded (none) already
    before = [dict(registry) for registry in (DATASETS, MODELS, REGULARIZERS)]
    with pytest.raises(ConfigError) as caught:
        plugins.load()
    name, _, value = entry.partition(" = ")
    assert str(caught.value).startswith(f"entry point {group}:{name} = {value} (distribution demo-broken 0.1) ")
    assert says in str(caught.value)
    assert [dict(registry) for registry in (DATASETS, MODELS, REGULARIZERS)] == before  # nothing half-added


@pytest.mark.slow
def test_a_broken_plugin_stops_the_command_with_one_line_and_exit_2(tmp_path):
    site = broken_site(tmp_path / "site", "regbench.datasets", "digits = demo_broken:Digits")
    done = run_cli("-m", "+suite=smoke", "regularizer=none,l2", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                   env={"PYTHONPATH": str(site)})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "regbench: error: entry point regbench.datasets:digits = demo_broken:Digits (distribution demo-broken "
        "0.1) takes the name of the built-in dataset digits: rename the entry point"]
    assert not (tmp_path / "sweep").exists()  # stopped before any job


def test_option_files_are_read_from_the_first_config_dir_holding_them_as_hydra_picks_them(tmp_path):
    from regbench.config import CONF_DIR, _option_file

    mine = write(tmp_path, {"dataset/digits.yaml": "name: digits\ntest_fraction: 0.5\n", **OPTION_FILES})
    sources = (("pkg", "hydra.conf"), ("file", str(CONF_DIR)), ("file", str(mine)), ("structured", ""))
    assert _option_file(sources, "dataset", "digits")["test_fraction"] == 0.2   # conf/ comes first
    assert _option_file(sources, "regularizer", "shrink") == {"name": "shrink", "factor": 1.0}
    assert _option_file(sources, "model", "nowhere") == {}
