"""An experiment: the config turned into validated parts, trained, and reported as metrics.json rows."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import torch
from omegaconf import DictConfig

import regbench
from regbench.config import ConfigError, build, build_named, check_choice, check_number, plain
from regbench.data import DATASETS
from regbench.models import MODELS
from regbench.regularizers import REGULARIZERS
from regbench.trainer import Regularizer, TrainerSettings, TrainResult, train_population

DEVICES = ("auto", "cpu", "cuda")


def technique_label(names: list[str]) -> str:
    """'none' for the baseline; otherwise the selected techniques sorted and joined: 'dropout+l2'."""
    chosen = sorted(name for name in names if name != "none")
    return "+".join(chosen) or "none"


def resolve_device(choice: str) -> torch.device:
    check_choice("device", choice, DEVICES)
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda is not available on this machine: choose auto or cpu")
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)


def build_regularizers(node: DictConfig | dict | None) -> list[Regularizer]:
    chosen = plain(node) or {}
    hooks = []
    for name, settings in chosen.items():
        if name not in REGULARIZERS:
            raise ConfigError(f"regularizer={name!r} is not allowed: choose from {', '.join(sorted(REGULARIZERS))}")
        hooks.append(build(f"regularizer.{name}", REGULARIZERS[name], settings))
    return hooks


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

    @classmethod
    def from_config(cls, cfg: DictConfig) -> "Experiment":
        """Validate every group before any training starts; a bad value raises ConfigError."""
        check_number("seed", cfg.seed, low=0, integer=True)
        check_number("replicates", cfg.replicates, low=1, integer=True)
        check_number("threads", cfg.threads, low=1, integer=True, optional=True)
        regularizers = build_regularizers(cfg.regularizer)
        return cls(dataset=build_named("dataset", DATASETS, cfg.dataset),
                   model=build_named("model", MODELS, cfg.model),
                   regularizers=regularizers,
                   trainer=build("trainer", TrainerSettings, cfg.trainer),
                   seeds=[cfg.seed + r for r in range(cfg.replicates)],
                   device=resolve_device(cfg.device),
                   technique=technique_label([r.name for r in regularizers]),
                   threads=cfg.threads)

    def run(self, on_epoch: Callable | None = None) -> tuple[list[dict], list[dict]]:
        """Train the population; return (one result row per seed, per-epoch curve rows)."""
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        data = self.dataset.load()
        result = train_population(self.model, data, self.trainer, self.regularizers, self.seeds,
                                  self.device, on_epoch=on_epoch)
        return run_rows(result), result.curves


def run_rows(result: TrainResult) -> list[dict]:
    """metrics.json `runs`: gap_acc = train_acc - test_acc, gap_loss = test_loss - train_loss.

    With ensembles the metrics are the ensemble's, and `member_*` keys hold its mean member's.
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
        row["epochs"] = int(result.epochs[r])
        row["best_epoch"] = None if result.best_epoch is None else int(result.best_epoch[r])
        row["diverged"] = bool(result.diverged[r])
        rows.append(row)
    return rows


def with_gaps(row: dict) -> dict:
    row["gap_acc"] = row["train_acc"] - row["test_acc"]
    row["gap_loss"] = row["test_loss"] - row["train_loss"]
    return row


def versions() -> dict[str, str]:
    import hydra
    return {"regbench": regbench.__version__, "torch": torch.__version__, "hydra": hydra.__version__}


def job_record(cfg: DictConfig, overrides: list[str]) -> dict:
    """The metrics.json fields known before training starts (filled in by `finish_record`)."""
    chosen = list((plain(cfg.regularizer) or {}).keys())
    return {"status": "running", "error": None,
            "technique": technique_label(chosen),
            "dataset": cfg.dataset.get("name"), "model": cfg.model.get("name"),
            "overrides": list(overrides), "config": plain(cfg),
            "runs": [], "wall_seconds": None, "device": str(cfg.device), "versions": versions()}


def run_job(experiment: Experiment, cfg: DictConfig, overrides: list[str],
            on_epoch: Callable | None = None) -> tuple[dict, list[dict]]:
    """Train the experiment and fill the job's record; returns (metrics.json record, curve rows)."""
    record = job_record(cfg, overrides)
    started = time.perf_counter()
    record["device"] = str(experiment.device)
    runs, curves = experiment.run(on_epoch=on_epoch)
    record["runs"] = runs
    record["status"] = "diverged" if any(run["diverged"] for run in runs) else "completed"
    record["wall_seconds"] = round(time.perf_counter() - started, 3)
    return record, curves
