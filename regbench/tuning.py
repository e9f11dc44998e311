"""Choosing a grid's value on validation, and reporting it on other seeds (`selection_seeds`).

A grid job trains every value of its member knobs for every seed. With `selection_seeds: N` its first N
seeds choose: the point with the best mean validation metric over them (accuracy for classification,
loss for regression) is the tuned setting, and its runs on the job's other seeds are the tuned result.
Test metrics never reach the choice: `select` reads validation numbers of the selection seeds alone.
"""
from __future__ import annotations

import math

from regbench import identity
from regbench.config import ConfigError, flatten, show
from regbench.settings import SELECTION_KEY


def score_key(runs: list[dict]) -> str:
    """'val_acc' where the runs have accuracy (classification), else 'val_loss'."""
    return "val_acc" if any(run.get("val_acc") is not None for run in runs) else "val_loss"


def point_score(runs: list[dict], seeds: list[int], key: str) -> float:
    """Mean `key` over the runs of `seeds`; NaN if one of them is missing, diverged or not finite."""
    by_seed = {run["seed"]: run for run in runs}
    values = []
    for seed in seeds:
        run = by_seed.get(seed)
        value = None if run is None or run.get("diverged") else run.get(key)
        if value is None or not math.isfinite(value):
            return math.nan
        values.append(value)
    return sum(values) / len(values)


def select(points: list[list[dict]], seeds: list[int],
           default: int | None = None) -> tuple[int | None, list[float], str]:
    """points: each grid point's runs (metrics.json `runs`); seeds: the selection seeds; default: the
    index of the point at the conf/ default, if the grid holds it.

    Returns (index of the chosen point or None when no point has a finite score, every point's score,
    the metric). The best mean validation accuracy wins (the lowest validation loss for regression).
    A tie goes to the default when it is among the best (no evidence to move away from it), else to
    the earliest in grid order: early stopping's patiences tie whenever each restores the same best
    epoch's weights."""
    key = score_key([run for runs in points for run in runs])
    scores = [point_score(runs, seeds, key) for runs in points]
    finite = [score for score in scores if math.isfinite(score)]
    if not finite:
        return None, scores, key
    best = max(finite) if key == "val_acc" else min(finite)
    tied = [i for i, score in enumerate(scores) if score == best]
    return (default if default in tied else tied[0]), scores, key


def check_validation(selection_seeds: int | None, grid: dict, validation_examples: int) -> None:
    """Choosing needs a validation split (called once the data is loaded, before training)."""
    if selection_seeds is not None and grid and validation_examples == 0:
        raise ConfigError(f"{SELECTION_KEY}={selection_seeds} chooses on the validation split, and this dataset "
                          "has none (dataset.val_fraction=0): expected val_fraction > 0, or selection_seeds=null")


def tuned_record(grid_record: dict, points: list[dict], grid: dict[str, list], selection_seeds: int,
                 setting: str) -> dict:
    """The tuned result of a grid job: `grid_record` is the job's own record (from job_record, with
    `seeds`), `points` its points' finished records in grid order, `setting` the grid's label less its
    knobs. Its runs are the chosen point's on the seeds after the first `selection_seeds`; its
    identity is the grid's config and the selection seeds. Status `failed` (with the reason) when no
    point can be chosen."""
    seeds = grid_record["seeds"]
    choosing, reporting = seeds[:selection_seeds], seeds[selection_seeds:]
    default = next((i for i, point in enumerate(points) if point["grid"].get("default")), None)
    chosen, scores, key = select([point["runs"] for point in points], choosing, default)
    record = {key_: value for key_, value in grid_record.items() if key_ not in ("points", "job_dir")}
    tuned_identity = identity.tuned_identity(grid_record["identity"], choosing)
    record.update(identity=tuned_identity, config_hash=identity.digest(tuned_identity), seeds=reporting)
    summary = {"grid": grid_record["config_hash"], "metric": key, "selection_seeds": choosing,
               "scores": [{"values": point_values(point, grid), "config_hash": point["config_hash"], "score": score}
                          for point, score in zip(points, scores)]}
    if chosen is None:
        record.update(status="failed", runs=[], tuned=summary,
                      error=f"no grid value could be chosen: every point has a diverged or missing {key} "
                            f"on the selection seeds {choosing}")
        return record
    point = points[chosen]
    runs = [run for run in point["runs"] if run["seed"] in reporting]
    values = point_values(point, grid)
    # the knob's own name ('strength'): the row's technique column already names the technique
    setting = " ".join([f"{k.rpartition('.')[2]}={show(v)}" for k, v in values.items()] + [setting])
    summary.update(chosen=values, chosen_hash=point["config_hash"],
                   default_hash=next((p["config_hash"] for p in points if p["grid"].get("default")), None))
    record.update(status="diverged" if any(run.get("diverged") for run in runs) else "completed", error=None,
                  runs=runs, tuned=summary, labels={**point["labels"], "setting": f"tuned {setting.strip()}"},
                  wall_seconds=point.get("wall_seconds"))
    return record


def point_values(point: dict, grid: dict[str, list]) -> dict:
    """The grid keys' values in a point's resolved config."""
    config = flatten(point["config"])
    return {key: config[key] for key in grid}
