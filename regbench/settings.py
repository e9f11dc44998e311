"""A config resolved once: every group turned into its validated object, before anything runs.

`resolve(cfg)` is the one place where a composed config becomes the parts a run uses (dataset, model,
trainer and technique dataclasses, the grid, the seeds, the device); a bad value raises ConfigError
naming its key. The identity of a result (regbench.identity) is computed from these parts, not from
the raw yaml, and the experiment (regbench.experiment) trains them.
"""
from __future__ import annotations

import dataclasses
import difflib
import itertools
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
from omegaconf import DictConfig

from regbench import plugins
from regbench.config import ConfigError, build, build_named, canonical, check_choice, check_number, option_file, \
    plain, show, top_level
from regbench.data import DATASETS
from regbench.models import MODELS
from regbench.models.base import ModelSpec
from regbench.regularizers import REGULARIZERS
from regbench.trainer import Regularizer, TrainerSettings

DEVICES = ("auto", "cpu", "cuda")
SELECTION_KEY = "selection_seeds"


def technique_label(names: list[str]) -> str:
    """'none' for the baseline; otherwise the selected techniques sorted and joined: 'dropout+l2'."""
    chosen = sorted(name for name in names if name != "none")
    return "+".join(chosen) or "none"


def selected_techniques(regularizer: Mapping | None) -> list[str]:
    """The techniques a job selected: the `regularizer` nodes that carry their own `name`.

    Every conf/regularizer/<name>.yaml sets `name: <name>`; a node without it holds settings given on
    the command line for a technique this job did not select (`regularizer=none regularizer.dropout.p=0.2`
    in a sweep beside dropout).
    """
    chosen = []
    for key, node in (regularizer or {}).items():
        name = node.get("name") if isinstance(node, Mapping) else None
        if name is not None and name != key:
            raise ConfigError(f"regularizer.{key}.name={name!r} is not allowed: it must be {key!r}, "
                              "the technique's own name")
        if name == key:
            chosen.append(key)
    if not chosen:
        raise ConfigError("regularizer: no technique is selected: choose one, e.g. regularizer=none "
                          "(a technique's yaml must set `name: <its name>`)")
    return chosen


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
            raise ConfigError(f"{key}={show(values)}: a list of values trains in one population only "
                              f"for {member_knob_names()}; {key} changes the network or the procedure: "
                              f"sweep it as separate jobs, -m {key}={','.join(map(show, values))}")
        if not values or len({json.dumps(canonical(value)) for value in values}) < len(values):
            raise ConfigError(f"{key}={show(values)}: a grid needs one or more distinct values")
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


def top_level_keys() -> set[str]:
    """The settings conf/config.yaml defines, and its groups (not the optional per-dataset overlays,
    which set keys inside `trainer` and `dataset`)."""
    root = option_file("", "config")
    groups = {next(iter(entry)) for entry in root.get("defaults", []) if isinstance(entry, dict)}
    groups = {group for group in groups if not group.startswith("optional ")}
    return (set(root) - {"defaults"}) | groups


def check_top_level(cfg: Mapping | DictConfig) -> None:
    """`+foo=1` composes, but regbench reads no `foo`: refuse it rather than carry it into results."""
    unknown = sorted(set(cfg.keys()) - top_level_keys() - {"hydra"})
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(top_level_keys()), n=1)
        raise ConfigError(f"{unknown[0]} is not a regbench setting:{f' did you mean {close[0]}?' if close else ''} "
                          f"top-level settings are {', '.join(sorted(top_level_keys()))}")


def check_selection(selection_seeds, replicates: int, grid: dict) -> None:
    """`selection_seeds` must leave seeds to report on; it means nothing without a grid (ignored)."""
    check_number(SELECTION_KEY, selection_seeds, low=1, integer=True, optional=True)
    if selection_seeds is not None and grid and selection_seeds >= replicates:
        raise ConfigError(f"{SELECTION_KEY}={selection_seeds} leaves no seed to report the chosen value on: "
                          f"expected fewer than replicates={replicates}")


@dataclass
class Settings:
    """Every part of a job, validated. The hooks hold a grid's first values (see `grid`)."""
    dataset_name: str
    dataset: Any                      # a dataset dataclass of regbench.data (or a plug-in's)
    model: ModelSpec
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
    def from_config(cls, cfg: Mapping | DictConfig):
        """Every value of a composed config checked (ConfigError) before anything runs; interpolations
        resolved here, once."""
        plugins.load()  # the registries below include the installed plug-ins
        cfg = top_level(cfg)
        check_top_level(cfg)
        check_choice("force", cfg.get("force"), (True, False))
        check_number("seed", cfg.get("seed"), low=0, integer=True)
        check_number("replicates", cfg.get("replicates"), low=1, integer=True)
        check_number("threads", cfg.get("threads"), low=1, integer=True, optional=True)
        regularizers, grid = build_regularizers(cfg.get("regularizer"))
        check_selection(cfg.get(SELECTION_KEY), cfg["replicates"], grid)
        dataset = dict(cfg.get("dataset") or {})
        return cls(grid=grid, selection_seeds=cfg.get(SELECTION_KEY), dataset_name=dataset.get("name"),
                   dataset=build_named("dataset", DATASETS, dataset),
                   model=build_named("model", MODELS, cfg.get("model")),
                   regularizers=regularizers,
                   trainer=build("trainer", TrainerSettings, cfg.get("trainer")),
                   seeds=list(range(cfg["seed"], cfg["seed"] + cfg["replicates"])),
                   device=resolve_device(cfg.get("device")),
                   technique=technique_label([r.name for r in regularizers]),
                   threads=cfg.get("threads"))
