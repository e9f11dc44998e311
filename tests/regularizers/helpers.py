"""Shared by the technique tests: a short job end to end through the app's own `execute`."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch

from regbench.app import execute
from regbench.data.base import Data
from regbench.experiment import Experiment
from regbench.regularizers.pretraining import PretrainedBody
from regbench.trainer import Streams, train_population
from regbench.trainer.loop import build_population

CPU = torch.device("cpu")


def train(make_cfg, seeds, *overrides: str):
    """Compose the smoke preset with 2 epochs and `overrides`, train `seeds` as one population on CPU.

    Returns (experiment, data, TrainResult)."""
    experiment = Experiment.from_config(make_cfg("trainer.epochs=2", *overrides))
    data = experiment.dataset.load()
    return experiment, data, train_population(experiment.model, data, experiment.trainer,
                                              experiment.regularizers, seeds, CPU)


def bind_toy(hook, seeds=(0, 1), num_classes: int = 3, modality: str = "tabular", x=None, y=None):
    """Bind a hook to members `seeds` and a toy dataset (empty unless `x`, `y` are given); returns it."""
    x = torch.zeros(0) if x is None else x
    y = torch.zeros(0) if y is None else y
    hook.bind(Streams(list(seeds), CPU), Data("toy", x, y, x, y, x, y, num_classes, modality))
    return hook


def end_to_end(make_cfg, *overrides: str) -> dict:
    """Run the smoke preset with `overrides` as a single job; return its metrics.json."""
    cfg = make_cfg(*overrides)
    with tempfile.TemporaryDirectory() as job_dir:
        execute(cfg, Path(job_dir), list(overrides), multirun=False)
        return json.loads((Path(job_dir) / "metrics.json").read_text())


def pretrained_start(make_cfg, overrides: tuple[str, ...], members: list[tuple[int, int]]):
    """Run only a pretraining technique's stage for `members`.

    Returns (experiment, data, hook, fresh params, the params fine-tuning starts from).
    """
    experiment = Experiment.from_config(make_cfg(*overrides))
    data = experiment.dataset.load()
    hook = next(h for h in experiment.regularizers if isinstance(h, PretrainedBody))
    hook.bind(Streams(members, CPU), data)
    hook.model(experiment.model)
    model, fresh = build_population(experiment.model, data, members, CPU)
    return experiment, data, hook, fresh, hook.init_params(model, fresh, experiment.trainer)


def assert_body_stays_pretrained(make_cfg, overrides: tuple[str, ...]) -> None:
    """Fine-tuning with a frozen body (and whatever else `overrides` select) leaves every body parameter
    bit for bit at its pretrained value, while the fresh head trains."""
    experiment, data, hook, _, pretrained = pretrained_start(make_cfg, overrides, [(0, 0)])
    result = train_population(experiment.model, data, experiment.trainer, experiment.regularizers, [0], CPU)
    for name, value in pretrained.items():
        assert torch.equal(result.params[name], value) == (name not in hook.head), name


def assert_fresh_head_on_pretrained_body(started, fresh, head, pretrained) -> None:
    """Fine-tuning starts from the member's own fresh output layer on top of the pretrained body."""
    for name in fresh:
        if name in head:
            assert torch.equal(started[name], fresh[name]), name
        else:
            assert not torch.equal(started[name], fresh[name]), name   # moved by pretraining
            torch.testing.assert_close(started[name], pretrained[name])
