"""The `regbench` command: a thin Hydra entry point around `execute`, which tests call directly."""
from __future__ import annotations

import contextlib
import copy
import difflib
import gc
import io
import logging
import math
import os
import signal
import re
import shutil
import socket
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from hydra.errors import ConfigCompositionException, HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from regbench import identity, jobs, plugins, progress, tuning, wiring  # noqa: F401 (wiring: Hydra's resolvers)
from regbench.config import CONF_DIR, ConfigError, check_choice, show, top_level
from regbench.experiment import Experiment, PointResult, job_record, run_job
from regbench.settings import grid_points, selected_techniques, technique_label
from regbench.trainer.hooks import NotApplicable
from regbench.results import write_atomic, write_csv, write_json, write_npz

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


def point_configs(cfg: DictConfig, grid: dict[str, list],
                  overrides: list[str]) -> list[tuple[DictConfig, list[str]]]:
    """(config, overrides) of each grid point: the grid's lists replaced by the point's values, so that
    each point is the config (and the command) of the job that would train that value alone."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(overrides))
    given = {override.key_or_group for override in parsed}
    configs = []
    for point in grid_points(grid):
        point_cfg = copy.deepcopy(cfg)
        for key, value in point.items():
            OmegaConf.update(point_cfg, key, value, merge=False)
        point_overrides = [f"{override.get_key_element()}={show(point[override.key_or_group])}"
                           if override.key_or_group in point else text for override, text in zip(parsed, overrides)]
        point_overrides += [f"{key}={show(value)}" for key, value in point.items() if key not in given]
        configs.append((point_cfg, point_overrides))
    return configs


def failure(cfg: DictConfig, overrides: list[str], error: BaseException) -> dict:
    """A metrics.json record for a job that could not start; works even where the config is broken.
    It is identified by its raw values (identity.invalid_hash), so that the same mistake rerun replaces
    it; a failed record is never reused."""
    raw = top_level(cfg, resolve=False)
    try:
        technique = technique_label(selected_techniques(raw.get("regularizer")))
    except ConfigError:
        technique = None
    record = {"technique": technique, "dataset": (raw.get("dataset") or {}).get("name"),
              "model": (raw.get("model") or {}).get("name"), "config_hash": identity.invalid_hash(cfg),
              "overrides": list(overrides), "config": raw,
              "runs": [], "host": socket.gethostname(), "pid": os.getpid()}
    seed, replicates = cfg.get("seed"), cfg.get("replicates")
    if isinstance(seed, int) and isinstance(replicates, int):  # so that a rerun finds it (jobs.same_job)
        record["seeds"] = [seed + r for r in range(replicates)]
    record.update(status="failed", error=f"{type(error).__name__}: {error}")
    return record


def execute(cfg: DictConfig, job_dir: Path, overrides: list[str], multirun: bool,
            launcher: Mapping | None = None) -> dict:
    """Run one job and write metrics.json (+ curves.csv) into `job_dir` (or beside it, see jobs.py).

    A job with a grid (a list of values for member knobs, `regularizer.l2.strength=[1e-4,1e-3]`) trains
    every point in one population and writes each point's result, with the identity of the job that
    would train that point alone, into a subdir `<technique>-<hash>-s<seeds>` of its dir.
    A point whose completed result is already there is skipped (`force=true` retrains); a job whose twin
    is running in another process is not started twice. A bad config in a single run raises ConfigError
    before anything is written. In a multirun every error is recorded as `status: failed` and the
    sweep goes on (a raising job would stop Hydra's end-of-sweep callback, and with it the leaderboard).
    Ctrl-C or SIGTERM records `status: interrupted`; the launcher process then stops the sweep.
    `launcher` (the job's hydra.launcher node) says how many jobs share the cores: a job with `threads: null`
    chooses within jobs.job_threads's share of them (an explicit threads=N wins).
    Returns the job's record with `job_dir`; a grid job's has its points' records under `points`.
    """
    job_dir = Path(job_dir)
    jobs.watch_launcher()
    try:
        check_overrides(overrides)
        experiment = Experiment.from_config(cfg)  # every value checked, the identity computed, once
        experiment.cores = jobs.job_threads(launcher, multirun)  # never jobs × threads > cores
        record = job_record(experiment, cfg, overrides)
        # each grid point as the job that would train that value alone: its own identity and labels
        points = [(Experiment.from_config(point_cfg), point_cfg, point_overrides)
                  for point_cfg, point_overrides in point_configs(cfg, experiment.grid, overrides)] \
            if experiment.grid else []
        point_records = [job_record(*point) for point in points]
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
    target = jobs.result_dir(job_dir, record["config_hash"], seeds, experiment.dir_name)
    with jobs.claim(target) as holder:
        if holder is not None:
            log.info("%s: the same job is running now (pid %s): not started twice", target.name, holder.get("pid"))
            return {**record, "status": "skipped", "job_dir": str(target)}
        if experiment.grid:
            for (point_experiment, point_cfg, _), point in zip(points, point_records):
                point.update(seeds=seeds, grid={"config_hash": record["config_hash"], "keys": list(experiment.grid),
                                                "default": identity.at_defaults(point_cfg, list(experiment.grid))})
            dirs = [target / point_experiment.dir_name for point_experiment, _, _ in points]
        else:
            point_records, dirs = [record], [target]
        records = run_points(experiment, cfg, point_records, dirs, multirun, target)
        if not experiment.grid:
            return records[0]
        summary = {**record, "status": jobs.grid_status([point["status"] for point in records]), "points": records,
                   "job_dir": str(target)}
        if experiment.selection_seeds is not None:
            setting = identity.labels(cfg, leave_out=tuple(experiment.grid))["setting"]
            summary["tuned"] = write_tuned(experiment, summary, target, setting)
            if summary["tuned"] is not None and summary["tuned"]["status"] == "failed":
                summary["status"] = "failed"   # the job did not give what it was asked for
    return summary


def write_tuned(experiment: Experiment, summary: dict, target: Path, setting: str) -> dict | None:
    """A grid job's tuned result (regbench.tuning), from its points' records, into its own subdir of the
    job's dir; written again on every run of the job (it only reads the points). The chosen value's
    curves.csv (and predictions.npz) go beside it: the pictures read the tuned row's seeds from them.
    It reads the points' results as they are on disk (a point whose forced rerun failed keeps its earlier
    result). None, and nothing written, when the technique does not apply to the data; None while a
    point has no finished result, and a tuned result written before is withdrawn (see withdraw_tuned)."""
    points = [{**point, **(jobs.read_record(Path(point["job_dir"]) / "metrics.json") or {})}
              for point in summary["points"]]
    if all(point["status"] == "not_applicable" for point in points):
        return None
    if any(point["status"] not in jobs.FINISHED for point in points):
        statuses = ", ".join(sorted({point["status"] for point in points}))
        log.error("%s: no tuned result: not every value finished (%s)", target.name, statuses)
        withdraw_tuned(target, f"not every grid value finished in the latest run ({statuses})")
        return None
    record = tuning.tuned_record(summary, points, experiment.grid, experiment.selection_seeds, setting)
    seeds = record["seeds"]
    directory = target / f"{record['technique']}-tuned-{record['config_hash'][:8]}-s{seeds[0]}-{seeds[-1]}"
    if record["status"] != "failed":
        chosen = next(point for point in points if point["config_hash"] == record["tuned"]["chosen_hash"])
        for name in ("curves.csv", "predictions.npz"):
            if (Path(chosen["job_dir"]) / name).exists():
                write_atomic(directory / name, (Path(chosen["job_dir"]) / name).read_bytes())
    write_json(directory / "metrics.json", record)
    if record["status"] == "failed":
        log.error("%s: %s", directory.name, record["error"])
    return {**record, "job_dir": str(directory)}


def withdraw_tuned(target: Path, why: str) -> None:
    """A tuned result in `target` that its grid's latest run no longer supports becomes `failed` (it is
    derived from the grid's values: rerunning the grid writes it again)."""
    for path in target.glob("*-tuned-*/metrics.json"):
        record = jobs.read_record(path)
        if record is not None and record.get("status") in jobs.FINISHED:
            record.update(status="failed", error=f"withdrawn: {why}", runs=[])
            write_json(path, record)


def run_points(experiment: Experiment, cfg: DictConfig, records: list[dict], dirs: list[Path],
               multirun: bool, job_dir: Path) -> list[dict]:
    """Train the points whose dir holds no finished result of theirs (all with `force`) as one population
    and write each one's files; returns every point's record with its `job_dir`. A sweep's progress
    file goes into `job_dir` (a grid job's own dir, above its points')."""
    done: dict[int, dict] = {}
    previous: dict[int, dict | None] = {}
    for i, (record, directory) in enumerate(zip(records, dirs)):
        earlier = jobs.read_record(directory / "metrics.json")
        if earlier is not None and earlier.get("status") in jobs.FINISHED and not cfg.force \
                and jobs.same_job(earlier, record["config_hash"], record["seeds"]):
            log.info("%s: already %s, skipped (force=true retrains)", directory.name, earlier["status"])
            comparison = {key: record[key] for key in ("baseline_hash", "labels")}
            if any(earlier.get(key) != value for key, value in comparison.items()):
                # what it is compared with (`baseline`) and how it is labelled are not its identity:
                # they follow the command that was run last; the runs stay as they were
                earlier.update(comparison)
                write_json(directory / "metrics.json", earlier)
            done[i] = {**earlier, "skipped": True, "job_dir": str(directory)}
        else:
            previous[i] = earlier
    todo = sorted(previous)
    # force=true over a finished result of this job: that result stays until the new one is complete
    # (an interrupt, a failure or a kill -9 leaves it as it was); the claim says the job is running
    kept = {i for i in todo if previous[i] is not None and previous[i].get("status") in jobs.FINISHED
            and jobs.same_job(previous[i], records[i]["config_hash"], records[i]["seeds"])}
    for i in todo:
        if i not in kept:
            write_json(dirs[i] / "metrics.json", records[i])  # status running: a kill -9 leaves it for resume

    def record_all(**fields) -> None:
        for i in todo:
            done[i] = {**records[i], **fields, "job_dir": str(dirs[i])}
            if i in kept:
                log.warning("%s: %s; its earlier result is kept", dirs[i].name, fields["status"])
            else:
                write_json(dirs[i] / "metrics.json", {k: v for k, v in done[i].items() if k != "job_dir"})

    if todo:
        try:
            with jobs.interruptible():
                seeds = experiment.seeds
                label = f"{experiment.technique} seeds {seeds[0]}-{seeds[-1]}"
                if experiment.grid:
                    label += f" x {len(todo)} values"
                total = experiment.trainer.epochs if experiment.trainer.steps is None else None  # None: unknown
                # a sweep shows every job's epoch on its one status line (regbench/progress.py)
                check_choice("progress", cfg.progress, PROGRESS)
                shown = (progress.epoch_file(job_dir, total) if multirun and cfg.progress is not False
                         else epoch_progress(cfg.progress, total, label))
                with shown as on_epoch:
                    trained = run_job(experiment, [records[i] for i in todo], points=todo, on_epoch=on_epoch)
        except KeyboardInterrupt as interrupt:
            record_all(status="interrupted", error=f"interrupted ({str(interrupt) or 'SIGINT'})", runs=[])
            if jobs.in_launcher_process():
                raise
            return [done[i] for i in range(len(records))]  # a worker: its launcher decides whether the sweep stops
        except NotApplicable as reason:
            # not the user's error: the technique has no meaning for this data (e.g. label smoothing on
            # a regression task). Recorded with its reason; the sweep and the exit code treat it as done.
            record_all(status="not_applicable", error=None, reason=str(reason), runs=[])
            log.info("%s: not applicable: %s", experiment.technique, reason)
            return [done[i] for i in range(len(records))]
        except Exception as error:
            if isinstance(error, ConfigError) and not multirun:  # found late (at data load): undo the start
                for i in set(todo) - kept:
                    if previous[i] is None:
                        (dirs[i] / "metrics.json").unlink(missing_ok=True)
                    else:
                        write_json(dirs[i] / "metrics.json", previous[i])
                raise
            record_all(status="failed", error=f"{type(error).__name__}: {error}", runs=[])
            if not multirun:
                raise
            log.error("job %s failed: %s", dirs[todo[0]].parent.name if experiment.grid else dirs[todo[0]].name,
                      done[todo[0]]["error"])
            return [done[i] for i in range(len(records))]
        for i, (record, result) in zip(todo, trained):
            write_point(dirs[i], record, result)
            done[i] = {**record, "job_dir": str(dirs[i])}
    return [done[i] for i in range(len(records))]


def write_point(directory: Path, record: dict, result: PointResult) -> None:
    """A trained point's files; metrics.json last, so that a finished record means finished files."""
    write_csv(directory / "curves.csv", result.curves)
    if result.predictions is not None:  # a 1-D regression: its fitted functions, for the pictures
        write_npz(directory / "predictions.npz", result.predictions)
    write_json(directory / "metrics.json", record)


def validation_score(record: dict) -> float:
    """What a job returns to Hydra's sweeper (e.g. Optuna): the mean over its seeds of the validation
    accuracy (classification) or validation loss (regression); NaN when there is none (a failed job, a
    seed that diverged, no validation split), which Optuna records as a failed trial. Never a test metric.
    A grid job returns its best point's (the highest accuracy, the lowest loss)."""
    if "points" in record:
        scored = [(validation_score(point), point) for point in record["points"]]
        scored = [(score, point) for score, point in scored if not math.isnan(score)]
        if not scored:
            return math.nan
        accuracy = scored[0][1]["runs"][0].get("val_acc") is not None
        return (max if accuracy else min)(score for score, _ in scored)
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
        remove_unused_dir(job_dir, f"{hydra_cfg.job.name}.log")
        fail(error)
    except OSError as error:  # a file or dir that cannot be read or written: the message names it
        remove_unused_dir(job_dir, f"{hydra_cfg.job.name}.log")
        fail(error, code=1)
    if not multirun:
        from regbench.report.cli import show_leaderboard
        result_dir = Path(record.get("job_dir", job_dir))
        summary = show_leaderboard([result_dir], out_dir=result_dir)
        written = "" if summary.empty else " and leaderboard.{csv,md}"
        print(f"regbench: {record['status']}: results{written} in {result_dir}")
        EXIT_CODE = exit_code({record["status"]: 1})
    return validation_score(record)


class OutputDirs(Callback):
    """Remembers which dirs the run (or sweep) dir of this process did not exist before Hydra made it, so
    that a command refused for a mistake removes what it made (`remove_unused_dir`) and nothing else."""
    made: list[Path] = []

    @staticmethod
    def remember(directory: str) -> None:
        path = Path(directory).absolute()
        OutputDirs.made = [p for p in (path, *path.parents) if not p.exists()]

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        # resolving ${now:...} here caches it in `config`: Hydra's run dir is this same path
        self.remember(config.hydra.run.dir)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.remember(config.hydra.sweep.dir)


HYDRA_FILES = {"config.yaml", "hydra.yaml", "overrides.yaml"}


def remove_unused_dir(directory: Path, *own_files: str) -> None:
    """Remove `directory` (and the empty parents Hydra made for it) if this process made it and it holds
    nothing but what Hydra writes at the start: .hydra/ and `own_files` (the job's log, a sweep's
    multirun.yaml). A dir that holds anything else, or that was there before, stays as it is."""
    directory = Path(directory).absolute()
    if directory not in OutputDirs.made or not directory.is_dir():
        return
    hydra_dir = directory / ".hydra"
    if not {entry.name for entry in directory.iterdir()} <= {".hydra", *own_files} or \
            (hydra_dir.exists() and not (hydra_dir.is_dir() and {e.name for e in hydra_dir.iterdir()} <= HYDRA_FILES)):
        return
    for handler in list(logging.getLogger().handlers):   # the job's log file is open: close it first
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename).parent == directory:
            logging.getLogger().removeHandler(handler)
            handler.close()
    shutil.rmtree(directory, ignore_errors=True)
    for parent in OutputDirs.made:   # deepest first
        if parent != directory:
            with contextlib.suppress(OSError):   # not empty: another run uses it now
                parent.rmdir()


# Exit codes of `regbench` (docs/usage.md#exit-codes): 0 every job completed (or was already complete, or its technique
# does not apply to the data: status not_applicable); 1 some job failed,
# diverged or was interrupted, or a sweep has nothing to show (the leaderboard is written first);
# 2 a config mistake; 130 Ctrl-C.
EXIT_CODE = 0


def exit_code(statuses: dict[str, int]) -> int:
    """1 when any job failed, diverged or did not finish; 0 otherwise."""
    bad = ("failed", "diverged", "interrupted", "running")
    return 1 if any(statuses.get(status) for status in bad) else 0


def did_you_mean(word: str, options: Iterable[str], prefix: str = "") -> str:
    """' did you mean dropout?' when one of `options` is close to `word` (difflib), else ''."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" did you mean {prefix}{close[0]}?" if close else ""


def one_line(error: BaseException) -> str:
    """A user-facing message for a config mistake caught by Hydra, OmegaConf or our own validation."""
    if isinstance(error, MissingConfigException) and error.missing_cfg_file and error.options:
        group, _, name = error.missing_cfg_file.rpartition("/")
        return (f"{group}={name} is not an option:{did_you_mean(name, error.options, f'{group}=')} "
                f"choose one of {', '.join(error.options)}")
    unknown = unknown_key(error)
    if unknown is not None:
        return unknown
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


def unknown_key(error: BaseException) -> str | None:
    """Hydra's 'Could not override 'trainer.epoch'' (the key is in no config) as one line naming the key,
    the closest real key and the keys of its node; None for any other error."""
    match = re.match(r"Could not override '([^']+)'", str(error))
    if not (isinstance(error, ConfigCompositionException) and match
            and isinstance(error.__cause__, (ConfigAttributeError, ConfigKeyError)) and "not in struct" in str(error.__cause__)):
        return None
    key = match.group(1)
    parent, _, leaf = key.rpartition(".")
    keys = setting_names(parent)
    if keys is None:
        return None
    where = f"a setting of {parent}" if parent else "a regbench setting"
    return (f"{key} is not {where}:{did_you_mean(leaf, keys, f'{parent}.' if parent else '')} "
            f"{'its settings are' if parent else 'top-level settings are'} {', '.join(sorted(keys))}")


def setting_names(parent: str) -> list[str] | None:
    """The keys of node `parent` ('' for the top level, 'trainer') in conf/ composed with the command's
    group choices (`regularizer=dropout`), else with none; None where there is no such node."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    choices = [arg for arg in sys.argv[1:] if re.fullmatch(r"\+?[a-z_]+=[\w\[\],]+", arg) and "," not in arg]
    for overrides in (choices, []):
        GlobalHydra.instance().clear()
        try:
            with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR), job_name="regbench"):
                cfg = compose(config_name="config", overrides=overrides)
        except Exception:   # a choice that does not compose either: the defaults then
            continue
        finally:
            GlobalHydra.instance().clear()
        node = OmegaConf.select(cfg, parent) if parent else cfg
        return [str(key) for key in node.keys()] if isinstance(node, DictConfig) else None
    return None


def fail(error: BaseException, code: int = 2) -> None:
    """Print a mistake as one line and exit (2: config, 1: a file); HYDRA_FULL_ERROR=1 re-raises it."""
    if USER_WANTS_TRACEBACK:
        raise error
    print(f"regbench: error: {one_line(error)}", file=sys.stderr)
    sys.exit(code)


USER_WANTS_TRACEBACK = os.environ.get("HYDRA_FULL_ERROR") == "1"


def version() -> str:
    """'regbench 0.1.0 (torch 2.13.0, Hydra 1.3.8)', read without importing torch."""
    from importlib.metadata import PackageNotFoundError, version as installed

    import regbench

    def of(package: str) -> str:
        try:
            return installed(package)
        except PackageNotFoundError:
            return "not installed"

    return f"regbench {regbench.__version__} (torch {of('torch')}, Hydra {hydra.__version__})"


def main() -> None:
    """The console script. Config mistakes print one line and exit 2 (HYDRA_FULL_ERROR=1: traceback)."""
    if "--version" in sys.argv[1:]:   # before Hydra, whose own --version names only Hydra's
        print(version())
        sys.exit(0)
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
        if LeaderboardCallback.sweep_dir is not None:   # a sweep refused before its first job
            remove_unused_dir(LeaderboardCallback.sweep_dir, "multirun.yaml")
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
