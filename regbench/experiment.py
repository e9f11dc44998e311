"""An experiment: the config turned into validated parts, trained, and reported as metrics.json rows."""
from __future__ import annotations

import dataclasses
import itertools
import json
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from omegaconf import DictConfig

import regbench
from regbench.config import ConfigError, build, build_named, check_choice, check_number, option_file, plain
from regbench import identity, plugins
from regbench.identity import selected_techniques, technique_label
from regbench.data import DATASETS
from regbench.models import MODELS
from regbench.regularizers import REGULARIZERS
from regbench.trainer import Regularizer, TrainerSettings, TrainResult, train_population
from regbench.trainer.hooks import Grid
from regbench.tuning import check_selection, check_validation

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(choice: str) -> torch.device:
    check_choice("device", choice, DEVICES)
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda is not available on this machine: choose auto or cpu")
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)


def takes_list(cls: type, knob: str) -> bool:
    """Whether a list is one value of this knob (augment's `ops`), not a grid of values."""
    kinds = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    return "list" in kinds.get(knob, "")


def member_knob_names() -> str:
    return ", ".join(f"{name}.{knob}" for name, cls in sorted(REGULARIZERS.items()) for knob in cls.member_knobs)


def knob_grid(name: str, cls: type, settings: dict) -> dict[str, list]:
    """{knob: values} for each knob of technique `name` given a list of values (a grid); refuses a list
    for a knob whose values cannot share one population."""
    grid = {}
    for knob, values in settings.items():
        if not isinstance(values, list) or takes_list(cls, knob):
            continue
        key = f"regularizer.{name}.{knob}"
        if knob not in cls.member_knobs:
            raise ConfigError(f"{key}={identity.show(values)}: a list of values trains in one population only "
                              f"for {member_knob_names()}; {key} changes the network or the procedure: "
                              f"sweep it as separate jobs, -m {key}={','.join(map(identity.show, values))}")
        if not values or len({json.dumps(identity.canonical(value)) for value in values}) < len(values):
            raise ConfigError(f"{key}={identity.show(values)}: a grid needs one or more distinct values")
        grid[knob] = values
    return grid


def build_regularizers(node: DictConfig | dict | None) -> tuple[list[Regularizer], dict[str, list]]:
    """The selected techniques' hooks, and the grid: {'regularizer.<name>.<knob>': values} for every
    member knob given a list. The hooks hold the first value of each; `Experiment.run` sets the others.
    Settings given for techniques this job did not select (a sweep's `regularizer.dropout.p=0.2` in its
    `none` jobs) are checked the same way, then left unused."""
    chosen = plain(node) or {}
    selected = selected_techniques(chosen)
    hooks, grid = [], {}
    for name, settings in chosen.items():
        if name not in REGULARIZERS:
            raise ConfigError(f"regularizer.{name} is not a technique: choose from {', '.join(sorted(REGULARIZERS))}")
        cls = REGULARIZERS[name]
        settings = {key: value for key, value in (settings or {}).items() if key != "name"}
        lists = knob_grid(name, cls, settings)
        first = {**settings, **{knob: values[0] for knob, values in lists.items()}}
        for knob, values in lists.items():
            for value in values[1:]:  # every value checked, as a job of its own would check it
                build(f"regularizer.{name}", cls, {**first, knob: value})
        hook = build(f"regularizer.{name}", cls, first)
        if name in selected:
            hooks.append(hook)
            grid.update({f"regularizer.{name}.{knob}": values for knob, values in lists.items()})
    return hooks, grid


def grid_points(grid: dict[str, list]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, in order ([{}]: no grid, a single point)."""
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


@dataclass
class PointResult:
    """One grid point's share of a population: metrics.json `runs`, curves.csv rows, predictions.npz
    arrays (1-D regression only, else None)."""
    runs: list[dict]
    curves: list[dict]
    predictions: dict | None


def top_level_keys() -> set[str]:
    """The settings conf/config.yaml defines, and its groups (not the optional per-dataset overlays,
    which set keys inside `trainer` and `dataset`)."""
    root = option_file("", "config")
    groups = {next(iter(entry)) for entry in root.get("defaults", []) if isinstance(entry, dict)}
    groups = {group for group in groups if not group.startswith("optional ")}
    return (set(root) - {"defaults"}) | groups


def check_top_level(cfg: DictConfig) -> None:
    """`+foo=1` composes, but regbench reads no `foo`: refuse it rather than carry it into results."""
    unknown = sorted(set(cfg.keys()) - top_level_keys() - {"hydra"})
    if unknown:
        raise ConfigError(f"{unknown[0]} is not a regbench setting: top-level settings are "
                          f"{', '.join(sorted(top_level_keys()))}")


@dataclass
class Experiment:
    dataset: Any
    model: Any
    regularizers: list[Regularizer]
    trainer: TrainerSettings
    seeds: list[int]
    device: torch.device
    technique: str
    threads: int | None = None
    # {'regularizer.l2.strength': [1e-4, 1e-3]}: member knobs given several values, all trained in one
    # population; every combination is a point of its own (its own result and identity)
    grid: dict[str, list] = field(default_factory=dict)
    # with a grid: the first `selection_seeds` seeds choose its value on validation (regbench.tuning)
    selection_seeds: int | None = None

    @property
    def points(self) -> list[dict[str, Any]]:
        return grid_points(self.grid)

    @classmethod
    def from_config(cls, cfg: DictConfig) -> "Experiment":
        """Validate every group before any training starts; a bad value raises ConfigError."""
        plugins.load()  # the registries below include the installed plug-ins
        check_top_level(cfg)
        check_choice("force", cfg.force, (True, False))
        identity.baseline_config(cfg)  # checks the `baseline` values
        check_number("seed", cfg.seed, low=0, integer=True)
        check_number("replicates", cfg.replicates, low=1, integer=True)
        check_number("threads", cfg.threads, low=1, integer=True, optional=True)
        regularizers, grid = build_regularizers(cfg.regularizer)
        check_selection(cfg.selection_seeds, cfg.replicates, grid)
        return cls(grid=grid, selection_seeds=cfg.selection_seeds, dataset=build_named("dataset", DATASETS, cfg.dataset),
                   model=build_named("model", MODELS, cfg.model),
                   regularizers=regularizers,
                   trainer=build("trainer", TrainerSettings, cfg.trainer),
                   seeds=list(range(cfg.seed, cfg.seed + cfg.replicates)),
                   device=resolve_device(cfg.device),
                   technique=technique_label([r.name for r in regularizers]),
                   threads=cfg.threads)

    def run(self, on_epoch: Callable | None = None, points: list[int] | None = None) -> list[PointResult]:
        """Train the seeds of the grid's `points` (indices into `self.points`; default all) as one
        population, point-major; return each point's result, in that order."""
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        every = self.points
        chosen = every if points is None else [every[i] for i in points]
        self.set_knobs(chosen)
        data = self.dataset.load()
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


def job_record(cfg: DictConfig, overrides: list[str]) -> dict:
    """The metrics.json fields known before training starts (filled in by `run_job`).

    `config_hash` is the result's identity (regbench.identity); `baseline_hash` names the `none` result
    its Δ is paired with; `labels` are the rows' labels: the config's difference from conf/ defaults.
    """
    chosen = selected_techniques(plain(cfg.regularizer))
    return {"status": "running", "error": None,
            "technique": technique_label(chosen),
            "dataset": cfg.dataset.get("name"), "model": cfg.model.get("name"),
            "config_hash": identity.config_hash(cfg), "baseline_hash": identity.baseline_hash(cfg),
            "labels": identity.labels(cfg),
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
        record["threads"] = torch.get_num_threads()  # what torch used (config `threads`, or see jobs.job_threads)
        record["runs"] = result.runs
        record["status"] = "diverged" if any(run["diverged"] for run in result.runs) else "completed"
        record["wall_seconds"] = wall
        record["population"] = len(results) * len(result.runs)  # replicates trained together
        record["finished_at"] = round(time.time(), 3)  # a sweep counts what it trained (report.cli.budget)
        done.append((record, result))
    return done
