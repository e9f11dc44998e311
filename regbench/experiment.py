"""An experiment: the config turned into validated parts, trained, and reported as metrics.json rows."""
from __future__ import annotations

import math
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from omegaconf import DictConfig
from torch import nn

import regbench
from regbench import identity, jobs
from regbench.config import plain
from regbench.data.base import Data
from regbench.models.base import ModelSpec
from regbench.settings import Settings
from regbench.trainer import TrainResult, train_population
from regbench.trainer.loop import objective_for
from regbench.trainer.hooks import Grid
from regbench.tuning import check_validation


def step_flops(spec: ModelSpec, data: Data, batch_size: int | None, members: int) -> float:
    """FLOPs of one training step of a population of `members` models: 3 x (a forward pass, and a
    backward pass of twice its work) the FLOPs of the Linear and convolution layers (2 per multiply-add)
    in a forward pass of one example through a template model, x the batch, x the members. Other layers
    are not counted. (Forward hooks: torch's FlopCounterMode imports sympy, 1.2 s on a job's first use.)"""
    spec.check_input(data.name, data.input_shape)  # a mismatched pair fails with its own line, not here
    with torch.random.fork_rng(devices=[]):  # the template's init draws must not move global RNG state
        template = spec.build(data.input_shape, objective_for(data).output_size(data))
    forward: list[int] = []

    def count(layer: nn.Module, _inputs, output: torch.Tensor) -> None:
        fan_in = layer.in_features if isinstance(layer, nn.Linear) else \
            layer.in_channels // layer.groups * math.prod(layer.kernel_size)
        forward.append(2 * fan_in * output.numel())

    layers = [m for m in template.modules() if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))]
    handles = [layer.register_forward_hook(count) for layer in layers]
    try:
        with torch.no_grad():
            template.eval()(torch.zeros(1, *data.input_shape))
    finally:
        for handle in handles:
            handle.remove()
    return 3 * sum(forward) * (batch_size or len(data.y_train)) * members


@dataclass
class PointResult:
    """One grid point's share of a population: metrics.json `runs`, curves.csv rows, predictions.npz
    arrays (1-D regression only, else None)."""
    runs: list[dict]
    curves: list[dict]
    predictions: dict | None


@dataclass
class Experiment(Settings):
    """A job's validated settings (regbench.settings) with what identifies its results, computed once:
    `config_hash`, `baseline_hash` and row `labels` (regbench.identity)."""
    identity: dict = field(default_factory=dict)
    config_hash: str = ""
    baseline_hash: str = ""
    labels: dict = field(default_factory=dict)
    # the cores this job may use: a parallel launcher's share (jobs.job_threads, set by app.execute);
    # None: every core. `threads: null` chooses within them (torch_threads)
    cores: int | None = None

    @classmethod
    def from_config(cls, cfg: DictConfig) -> "Experiment":
        """Validate every group before any training starts; a bad value raises ConfigError."""
        experiment = super().from_config(cfg)
        experiment.identity = identity.identity_of(experiment)
        experiment.config_hash = identity.digest(experiment.identity)
        experiment.baseline_hash = identity.baseline_hash(cfg)  # checks the `baseline` values too
        experiment.labels = identity.labels(cfg)
        return experiment

    @property
    def dir_name(self) -> str:
        return identity.dir_name(self.technique, self.config_hash, self.seeds)

    def run(self, on_epoch: Callable | None = None, points: list[int] | None = None) -> list[PointResult]:
        """Train the seeds of the grid's `points` (indices into `self.points`; default all) as one
        population, point-major; return each point's result, in that order."""
        every = self.points
        chosen = every if points is None else [every[i] for i in points]
        self.set_knobs(chosen)
        data = self.dataset.load()
        torch.set_num_threads(self.torch_threads(data, len(self.seeds) * len(chosen)))
        check_validation(self.selection_seeds, self.grid, len(data.y_val))
        result = train_population(self.model, data, self.trainer, self.regularizers, self.seeds * len(chosen),
                                  self.device, on_epoch=on_epoch)
        rows, R = run_rows(result), len(self.seeds)
        arrays = function_arrays(data, result)
        curves: list[list[dict]] = [[] for _ in chosen]
        for row in result.curves:  # `row` indexes the population's replicates, point-major
            curves[row.pop("row") // R].append(row)
        results = []
        for g in range(len(chosen)):
            share = slice(g * R, (g + 1) * R)
            predictions = None if arrays is None else {
                **arrays, "predictions": arrays["predictions"][share], "seeds": arrays["seeds"][share]}
            results.append(PointResult(rows[share], curves[g], predictions))
        return results

    def torch_threads(self, data: Data, replicates: int) -> int:
        """The threads torch trains `replicates` (seeds x grid points) with: `threads=N` as asked; for
        `threads: null`, jobs.auto_threads of one training step's work, within the cores this job may use."""
        if self.threads is not None:
            return self.threads
        members = replicates * max([hook.ensemble_size() for hook in self.regularizers], default=1)
        return jobs.auto_threads(step_flops(self.model, data, self.trainer.batch_size, members), self.cores)

    def set_knobs(self, points: list[dict[str, Any]]) -> None:
        """Give the hooks the grid knobs' values of `points`: a number for one point, else a `Grid`."""
        for key in self.grid:
            _, name, knob = key.split(".")
            hook = next(hook for hook in self.regularizers if hook.name == name)
            values = tuple(point[key] for point in points)
            setattr(hook, knob, values[0] if len(values) == 1 else Grid(values))


def function_arrays(data, result: TrainResult) -> dict | None:
    """predictions.npz of a 1-D regression (the fitted functions): x_test, y_test (n,) the grid and its
    targets, predictions (R, n) one row per seed, seeds (R,), x_train, y_train (N,). None otherwise."""
    if result.test_predictions is None:
        return None

    def flat(tensor: torch.Tensor):
        return tensor.detach().cpu().reshape(len(tensor)).numpy()

    return {"x_test": flat(data.x_test), "y_test": flat(data.y_test),
            "predictions": result.test_predictions.numpy(), "seeds": torch.tensor(result.seeds).numpy(),
            "x_train": flat(data.x_train), "y_train": flat(data.y_train)}


def run_rows(result: TrainResult) -> list[dict]:
    """metrics.json `runs`: gap_acc = train_acc - test_acc, gap_loss = test_loss - train_loss.

    With ensembles the metrics are the ensemble's, `member_*` keys hold its mean member's and
    `member_test_accs` each member's test accuracy (`member_test_losses` for regression).
    """
    final = {key: value.tolist() for key, value in result.final.items()}
    members = {key: value.tolist() for key, value in (result.member_final or {}).items()}
    rows = []
    for r, seed in enumerate(result.seeds):
        row = {"seed": seed, **{key: values[r] for key, values in final.items()}}
        with_gaps(row)
        if members:
            member = with_gaps({key: values[r] for key, values in members.items()})
            row.update({f"member_{key}": value for key, value in member.items()})
            each = result.member_each or {}
            if "test_acc" in each:  # each member's own, for the members-against-ensemble picture
                row["member_test_accs"] = each["test_acc"][r].tolist()
            elif "test_loss" in each:  # regression
                row["member_test_losses"] = each["test_loss"][r].tolist()
        row["epochs"] = int(result.epochs[r])
        row["best_epoch"] = None if result.best_epoch is None else int(result.best_epoch[r])
        row["diverged"] = bool(result.diverged[r])
        # the first epoch its training loss was not finite, where that cost it its reported weights
        # (0: only a val or test loss was non-finite, never a training loss)
        row["diverged_epoch"] = (int(result.diverged_epoch[r]) or None) if row["diverged"] else None
        rows.append(row)
    return rows


def with_gaps(row: dict) -> dict:
    """Adds the gaps; a regression row has no accuracy and no calibration: its `*_acc` keys and
    `test_ece` are null."""
    for split in ("train", "val", "test"):
        row.setdefault(f"{split}_acc", None)
    row.setdefault("test_ece", None)
    row["gap_acc"] = None if row["test_acc"] is None else row["train_acc"] - row["test_acc"]
    row["gap_loss"] = row["test_loss"] - row["train_loss"]
    return row


def versions() -> dict[str, str]:
    import hydra
    return {"regbench": regbench.__version__, "torch": torch.__version__, "hydra": hydra.__version__}


def job_record(experiment: Experiment, cfg: DictConfig, overrides: list[str]) -> dict:
    """The metrics.json fields known before training starts (filled in by `run_job`).

    `config_hash` is the result's identity and `identity` what it hashes (regbench.identity);
    `baseline_hash` names the `none` result its Δ is paired with; `labels` are the rows' labels: the
    config's difference from conf/ defaults; `config` the resolved config as it was given.
    """
    return {"status": "running", "error": None, "technique": experiment.technique,
            "dataset": experiment.dataset_name, "model": experiment.model.name,
            "config_hash": experiment.config_hash, "baseline_hash": experiment.baseline_hash,
            "labels": experiment.labels, "identity": experiment.identity,
            "overrides": list(overrides), "config": plain(cfg),
            "runs": [], "wall_seconds": None, "device": str(cfg.device), "versions": versions(),
            "host": socket.gethostname(), "pid": os.getpid()}


def run_job(experiment: Experiment, records: list[dict], points: list[int] | None = None,
            on_epoch: Callable | None = None) -> list[tuple[dict, PointResult]]:
    """Train the experiment's `points` (default all) and fill in each one's record (from `job_record`);
    returns (record, result) per point. `wall_seconds` is the whole population's, in every record."""
    started = time.perf_counter()
    results = experiment.run(on_epoch=on_epoch, points=points)
    wall = round(time.perf_counter() - started, 3)
    done = []
    for record, result in zip(records, results):
        record = dict(record)
        record["device"] = str(experiment.device)
        record["threads"] = torch.get_num_threads()  # what torch used (Experiment.torch_threads)
        record["runs"] = result.runs
        record["status"] = "diverged" if any(run["diverged"] for run in result.runs) else "completed"
        record["wall_seconds"] = wall
        record["population"] = len(results) * len(result.runs)  # replicates trained together
        record["finished_at"] = round(time.time(), 3)  # a sweep counts what it trained (report.cli.budget)
        done.append((record, result))
    return done
