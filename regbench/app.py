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
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from regbench.config import CONF_DIR, ConfigError, check_choice
from regbench.experiment import Experiment, job_record, run_job
from regbench.results import write_csv, write_json

log = logging.getLogger("regbench")
PROGRESS = ("auto", True, False)


@contextlib.contextmanager
def epoch_progress(mode: str, epochs: int | None, label: str) -> Iterator[Callable | None]:
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
        experiment = Experiment.from_config(cfg)  # every value checked before anything runs
        label = f"{experiment.technique} seeds {experiment.seeds[0]}-{experiment.seeds[-1]}"
        total = experiment.trainer.epochs if experiment.trainer.steps is None else None  # None: unknown
        with epoch_progress(cfg.progress, total, label) as on_epoch:
            record, curves = run_job(experiment, cfg, overrides, on_epoch=on_epoch)
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


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def hydra_entry(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    job_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        record = execute(cfg, job_dir, list(hydra_cfg.overrides.task), multirun)
    except ConfigError as error:
        # Raised only in a single run. Exit here: an exception would make Hydra print more lines.
        fail(error)
    if not multirun:
        from regbench.leaderboard import show_leaderboard
        show_leaderboard([job_dir], write=False)
        log.info("results in %s (%s)", job_dir, record["status"])


def one_line(error: BaseException) -> str:
    """A user-facing message for a config mistake caught by Hydra, OmegaConf or our own validation."""
    if isinstance(error, MissingConfigException) and error.missing_cfg_file and error.options:
        group, _, name = error.missing_cfg_file.rpartition("/")
        return f"{group}={name} is not an option: choose one of {', '.join(error.options)}"
    lines = [str(error), str(error.__cause__ or "")]
    keep = []
    for text in lines:
        for line in text.splitlines():
            line = line.strip()
            if line.startswith(("Config search path", "provider=", "full_key", "object_type", "To append")):
                continue
            if line and line not in keep:
                keep.append(line.rstrip("."))
    message = "; ".join(keep)
    if "is not in struct" in message and "regularizer." in message:
        message += " (a technique's settings exist once it is selected, e.g. regularizer=l2)"
    return message


def fail(error: BaseException) -> None:
    """Print a config mistake as one line and exit 2; re-raise it when the user set HYDRA_FULL_ERROR=1."""
    if USER_WANTS_TRACEBACK:
        raise error
    print(f"regbench: error: {one_line(error)}", file=sys.stderr)
    sys.exit(2)


USER_WANTS_TRACEBACK = os.environ.get("HYDRA_FULL_ERROR") == "1"


def main() -> None:
    """The console script. Config mistakes print one line and exit 2 (HYDRA_FULL_ERROR=1: traceback)."""
    # Hydra prints composition errors over several lines; letting them through to here keeps them to one.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        hydra_entry()
    except (ConfigError, HydraException, OmegaConfBaseException) as error:
        fail(error)
