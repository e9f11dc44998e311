"""The `regbench` command: a thin Hydra entry point around `execute`, which tests call directly."""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Callable, Iterator

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from regbench.config import ConfigError, check_choice
from regbench.experiment import job_record, run_job
from regbench.results import write_csv, write_json

log = logging.getLogger("regbench")
PROGRESS = ("auto", True, False)


@contextlib.contextmanager
def epoch_progress(mode: str, epochs: int, label: str) -> Iterator[Callable | None]:
    """A rich progress bar over epochs; with progress=auto only when stderr is a terminal."""
    check_choice("progress", mode, PROGRESS)
    if mode is False or (mode == "auto" and not sys.stderr.isatty()):
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[status]}"), TimeElapsedColumn(), transient=True) as bar:
        task = bar.add_task(label, total=epochs, status="")

        def on_epoch(epoch: int, metrics: dict) -> None:
            status = (f"train acc {metrics['train_acc'].mean():.3f}  "
                      f"test acc {metrics['test_acc'].mean():.3f}")
            bar.update(task, completed=epoch, status=status)

        yield on_epoch


def execute(cfg: DictConfig, job_dir: Path, overrides: list[str], multirun: bool) -> dict:
    """Run one job and write metrics.json (+ curves.csv) into `job_dir`.

    A bad config in a single run raises ConfigError before anything is written. In a multirun every
    error is recorded as `status: failed` and the sweep goes on (a raising job would stop Hydra's
    end-of-sweep callback, and with it the leaderboard).
    """
    job_dir = Path(job_dir)
    try:
        label = f"{cfg.regularizer and '+'.join(cfg.regularizer.keys())} seed {cfg.seed}"
        with epoch_progress(cfg.progress, cfg.trainer.epochs, label) as on_epoch:
            record, curves = run_job(cfg, overrides, on_epoch=on_epoch)
    except Exception as error:  # recorded, then re-raised unless the sweep must go on
        if isinstance(error, ConfigError) and not multirun:
            raise
        record = job_record(cfg, overrides)
        record.update(status="failed", error=f"{type(error).__name__}: {error}")
        write_json(job_dir / "metrics.json", record)
        if not multirun:
            raise
        log.error("job %s failed: %s", job_dir.name, record["error"])
        return record
    write_csv(job_dir / "curves.csv", curves)
    write_json(job_dir / "metrics.json", record)
    return record


# conf/ sits beside the package in the repo (installed editable); an absolute path is read as a directory.
CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def hydra_entry(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    job_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        record = execute(cfg, job_dir, list(hydra_cfg.overrides.task), multirun)
    except ConfigError as error:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"regbench: error: {error}", file=sys.stderr)
        sys.exit(2)
    if not multirun:
        from regbench.leaderboard import show_leaderboard
        show_leaderboard([job_dir], write=False)
        log.info("results in %s (%s)", job_dir, record["status"])


def main() -> None:
    hydra_entry()
