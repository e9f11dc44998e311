"""The `regbench` command: a thin Hydra entry point around `execute`, which tests call directly."""
from __future__ import annotations

import contextlib
import gc
import io
import logging
import math
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Callable, Iterator, Mapping

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from regbench import identity, jobs, plugins, progress
from regbench.config import CONF_DIR, ConfigError, check_choice
from regbench.experiment import Experiment, job_record, run_job
from regbench.trainer.hooks import NotApplicable
from regbench.results import write_csv, write_json, write_npz

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
            if "train_loss" not in metrics:   # train and test are measured every trainer.curve_every epochs
                bar.update(task, completed=epoch)
                return
            metric = "acc" if "train_acc" in metrics else "loss"  # regression: no accuracy
            status = (f"train {metric} {metrics[f'train_{metric}'].mean():.3f}  "
                      f"test {metric} {metrics[f'test_{metric}'].mean():.3f}")
            bar.update(task, completed=epoch, status=status)

        yield on_epoch


def check_overrides(overrides: list[str]) -> None:
    """Mistakes Hydra composes without a word: `regularizer=[l2,l2]` merges into one l2."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    for override in OverridesParser.create().parse_overrides(list(overrides)):
        if override.key_or_group != "regularizer":
            continue
        names = override.value()
        if isinstance(names, list) and len(set(names)) < len(names):
            twice = next(name for name in names if names.count(name) > 1)
            raise ConfigError(f"regularizer={override.get_value_element_as_str()} selects {twice} twice: "
                              f"select a technique once and set its strength (regularizer.{twice}.*)")


def failure(cfg: DictConfig, overrides: list[str], error: BaseException) -> dict:
    """A metrics.json record for a job that could not start; works even where the config is broken."""
    try:
        record = job_record(cfg, overrides)
    except Exception:  # the identity itself could not be computed (e.g. no technique selected)
        record = {"technique": None, "dataset": None, "model": None, "overrides": list(overrides),
                  "runs": [], "pid": os.getpid()}
    seed, replicates = cfg.get("seed"), cfg.get("replicates")
    if isinstance(seed, int) and isinstance(replicates, int):  # so that a rerun finds it (jobs.same_job)
        record["seeds"] = [seed + r for r in range(replicates)]
    record.update(status="failed", error=f"{type(error).__name__}: {error}")
    return record


def execute(cfg: DictConfig, job_dir: Path, overrides: list[str], multirun: bool,
            launcher: Mapping | None = None) -> dict:
    """Run one job and write metrics.json (+ curves.csv) into `job_dir` (or beside it, see jobs.py).

    A job whose completed result is already there is skipped (`force=true` retrains); one whose twin is
    running in another process is not started twice. A bad config in a single run raises ConfigError
    before anything is written. In a multirun every error is recorded as `status: failed` and the
    sweep goes on (a raising job would stop Hydra's end-of-sweep callback, and with it the leaderboard).
    Ctrl-C or SIGTERM records `status: interrupted`; the launcher process then stops the sweep.
    `launcher` (the job's hydra.launcher node) says how many jobs share the cores: `threads: null`
    becomes jobs.job_threads's share of them.
    """
    job_dir = Path(job_dir)
    jobs.watch_launcher()
    try:
        check_overrides(overrides)
        experiment = Experiment.from_config(cfg)  # every value checked before anything runs
        if experiment.threads is None:  # never jobs × threads > cores (an explicit threads=N wins)
            experiment.threads = jobs.job_threads(launcher, multirun)
        record = job_record(cfg, overrides)
    except ConfigError as error:
        if not multirun:
            raise
        record = failure(cfg, overrides, error)
        if not (job_dir / "metrics.json").exists():  # never over another job's result
            write_json(job_dir / "metrics.json", record)
        log.error("job %s failed: %s", job_dir.name, record["error"])
        return record
    seeds = experiment.seeds
    record["seeds"] = seeds
    target = jobs.result_dir(job_dir, record["config_hash"], seeds, identity.job_dir_name(cfg))
    with jobs.claim(target) as holder:
        if holder is not None:
            log.info("%s: the same job is running now (pid %s): not started twice", target.name, holder.get("pid"))
            return {**record, "status": "skipped", "job_dir": str(target)}
        previous = jobs.read_record(target / "metrics.json")
        if previous is not None and previous.get("status") in jobs.FINISHED and not cfg.force:
            log.info("%s: already %s, skipped (force=true retrains)", target.name, previous["status"])
            comparison = {key: record[key] for key in ("baseline_hash", "labels")}
            if any(previous.get(key) != value for key, value in comparison.items()):
                # what it is compared with (`baseline`) and how it is labelled are not its identity:
                # they follow the command that was run last; the runs stay as they were
                previous.update(comparison)
                write_json(target / "metrics.json", previous)
            return {**previous, "skipped": True, "job_dir": str(target)}
        write_json(target / "metrics.json", record)  # status running: a kill -9 leaves it for resume
        try:
            with jobs.interruptible():
                label = f"{experiment.technique} seeds {seeds[0]}-{seeds[-1]}"
                total = experiment.trainer.epochs if experiment.trainer.steps is None else None  # None: unknown
                # a sweep shows every job's epoch on its one status line (regbench/progress.py)
                check_choice("progress", cfg.progress, PROGRESS)
                shown = (progress.epoch_file(target, total) if multirun and cfg.progress is not False
                         else epoch_progress(cfg.progress, total, label))
                with shown as on_epoch:
                    record, curves = run_job(experiment, record, on_epoch=on_epoch)
        except KeyboardInterrupt as interrupt:
            record.update(status="interrupted", error=f"interrupted ({str(interrupt) or 'SIGINT'})", runs=[])
            write_json(target / "metrics.json", record)
            if jobs.in_launcher_process():
                raise
            return record  # a worker: its launcher decides whether the sweep stops
        except NotApplicable as reason:
            # not the user's error: the technique has no meaning for this data (e.g. label smoothing on
            # a regression task). Recorded with its reason; the sweep and the exit code treat it as done.
            record.update(status="not_applicable", error=None, reason=str(reason), runs=[])
            write_json(target / "metrics.json", record)
            log.info("%s: not applicable: %s", experiment.technique, reason)
            return {**record, "job_dir": str(target)}
        except Exception as error:
            if isinstance(error, ConfigError) and not multirun:  # found late (at data load): undo the start
                if previous is None:
                    (target / "metrics.json").unlink(missing_ok=True)
                else:
                    write_json(target / "metrics.json", previous)
                raise
            record.update(status="failed", error=f"{type(error).__name__}: {error}", runs=[])
            write_json(target / "metrics.json", record)
            if not multirun:
                raise
            log.error("job %s failed: %s", target.name, record["error"])
            return record
        write_csv(target / "curves.csv", curves)
        if experiment.predictions is not None:  # a 1-D regression: its fitted functions, for the pictures
            write_npz(target / "predictions.npz", experiment.predictions)
        write_json(target / "metrics.json", record)
    return {**record, "job_dir": str(target)}


def validation_score(record: dict) -> float:
    """What a job returns to Hydra's sweeper (e.g. Optuna): the mean over its seeds of the validation
    accuracy (classification) or validation loss (regression); NaN when there is none (a failed job, a
    seed that diverged, no validation split), which Optuna records as a failed trial. Never a test metric."""
    runs = record.get("runs") or []
    if any(run.get("diverged") for run in runs):
        return math.nan
    key = "val_acc" if runs and runs[0].get("val_acc") is not None else "val_loss"
    values = [run.get(key) for run in runs]
    if not values or any(value is None or math.isnan(value) for value in values):
        return math.nan
    return sum(values) / len(values)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def hydra_entry(cfg: DictConfig) -> float:
    global EXIT_CODE
    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    job_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        record = execute(cfg, job_dir, list(hydra_cfg.overrides.task), multirun, hydra_cfg.launcher)
    except ConfigError as error:
        # Raised only in a single run. Exit here: an exception would make Hydra print more lines.
        fail(error)
    except OSError as error:  # a file or dir that cannot be read or written: the message names it
        fail(error, code=1)
    if not multirun:
        from regbench.report.cli import show_leaderboard
        result_dir = Path(record.get("job_dir", job_dir))
        show_leaderboard([result_dir], write=False)
        log.info("results in %s (%s)", result_dir, record["status"])
        EXIT_CODE = exit_code({record["status"]: 1})
    return validation_score(record)


# Exit codes of `regbench` (README): 0 every job completed (or was already complete, or its technique
# does not apply to the data: status not_applicable); 1 some job failed,
# diverged or was interrupted, or a sweep has nothing to show (the leaderboard is written first);
# 2 a config mistake; 130 Ctrl-C.
EXIT_CODE = 0


def exit_code(statuses: dict[str, int]) -> int:
    """1 when any job failed, diverged or did not finish; 0 otherwise."""
    bad = ("failed", "diverged", "interrupted", "running")
    return 1 if any(statuses.get(status) for status in bad) else 0


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
    return "; ".join(keep)


def fail(error: BaseException, code: int = 2) -> None:
    """Print a mistake as one line and exit (2: config, 1: a file); HYDRA_FULL_ERROR=1 re-raises it."""
    if USER_WANTS_TRACEBACK:
        raise error
    print(f"regbench: error: {one_line(error)}", file=sys.stderr)
    sys.exit(code)


USER_WANTS_TRACEBACK = os.environ.get("HYDRA_FULL_ERROR") == "1"


def main() -> None:
    """The console script. Config mistakes print one line and exit 2 (HYDRA_FULL_ERROR=1: traceback)."""
    # Hydra prints composition errors over several lines; letting them through to here keeps them to one.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    # Jobs in worker processes (joblib, submitit_local) watch this process and end when it is gone.
    os.environ[jobs.LAUNCHER_PID] = str(os.getpid())
    os.environ[jobs.LAUNCHER_HOST] = socket.gethostname()
    signal.signal(signal.SIGTERM, jobs.raise_interrupted)
    from regbench.report.cli import LeaderboardCallback

    try:
        plugins.load()  # here, so that a broken plug-in stops a sweep with one line before any job starts
        try:
            hydra_entry()
        except BaseException:   # a sweep cut short: its progress line ends before any message below
            progress.stop_watcher(final=False)
            raise
    except (ConfigError, HydraException, OmegaConfBaseException) as error:
        fail(error)
    except OSError as error:  # a file or dir that cannot be read or written: the message names it
        fail(error, code=1)
    except KeyboardInterrupt:
        sys.exit(interrupted(LeaderboardCallback.sweep_dir))
    except Exception as error:
        if USER_WANTS_TRACEBACK or not raised_by_launcher(error):
            raise
        fail(RuntimeError(f"hydra/launcher could not start the sweep: {error}"))
    summary = LeaderboardCallback.summary
    # Everything made so far lives until the process ends: out of the collections the interpreter runs
    # while it shuts down, which took ~0.8 s over torch's and Hydra's objects.
    gc.freeze()
    if summary is not None:  # a multirun: its jobs' statuses, read back from the files
        sys.exit(1 if summary.empty else exit_code(summary.statuses))
    sys.exit(EXIT_CODE)


def raised_by_launcher(error: BaseException) -> bool:
    """An error from a launcher plugin or submitit (no srun off a SLURM cluster): the environment, not
    regbench, so one line. Jobs' own errors never get here: `execute` records them."""
    import traceback

    return any(frame.f_globals.get("__name__", "").startswith(("submitit", "hydra_plugins"))
               for frame, _ in traceback.walk_tb(error.__traceback__))


def interrupted(sweep_dir: str | None) -> int:
    """Ctrl-C: the leaderboard of the jobs that finished (on stdout), one line on stderr; exit code 130."""
    if sweep_dir is None or not Path(sweep_dir).exists():
        print("regbench: interrupted", file=sys.stderr)
        return 130
    jobs.mark_dead_jobs_interrupted(Path(sweep_dir))
    from regbench.report.cli import show_leaderboard

    with contextlib.redirect_stderr(io.StringIO()):  # its notes would add lines to the one below
        try:
            summary = show_leaderboard([Path(sweep_dir)], out_dir=Path(sweep_dir))
        except KeyboardInterrupt:  # a second Ctrl-C: leave now
            summary = None
    done = "" if summary is None else (
        f"{summary.statuses.get('completed', 0) + summary.statuses.get('diverged', 0)} jobs finished"
        + ("" if summary.empty else f", leaderboard in {sweep_dir}") + "; ")
    print(f"regbench: interrupted: {done}rerun the same command with hydra.sweep.dir={sweep_dir} to "
          "finish the sweep (finished jobs are skipped)", file=sys.stderr)
    return 130
