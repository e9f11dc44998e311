"""Collect: read and check every metrics.json under some dirs; one run per (config_hash, seed), the
newest file's. Nothing here prints or computes statistics."""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from regbench.config import show
from regbench.results import IDENTITY_SCHEME, identity_scheme

FINISHED = ("completed", "diverged")  # jobs whose runs count (`diverged`: some of its runs did)
UNFINISHED = ("failed", "interrupted", "running")
# a technique that has no meaning for the data (label smoothing on regression): listed, neither a row nor
# a failure; its `reason` says why
NOT_APPLICABLE = "not_applicable"
LABELS = ("dataset", "model", "setting")
# Fields of a run that the leaderboard reads; member_test_acc: an ensemble's mean member; test_ece: the
# expected calibration error of the reported weights on the test set (null for regression)
METRICS = ("test_acc", "train_acc", "gap_acc", "test_loss", "train_loss", "gap_loss", "member_test_acc",
           "test_ece")
# An ensemble's members one by one (lists of numbers or nulls), for the members-against-ensemble picture.
MEMBER_LISTS = ("member_test_accs", "member_test_losses")
HASH = re.compile(r"[0-9a-f]{8,64}")
# The packages whose versions a row reports when its runs come from several (`versions` in metrics.json);
# a record without them (written before `versions` existed) counts as "unknown".
VERSIONED = ("regbench", "torch")
UNKNOWN_VERSION = "unknown"


class BadFile(Exception):
    """A metrics.json the leaderboard cannot use; the message says what is wrong, in a few words."""


def find_metrics(dirs: Iterable[Path | str]) -> list[Path]:
    """Every `**/metrics.json` under `dirs` (a path to a file is taken as it is), each file once."""
    found: dict[Path, Path] = {}
    for directory in map(Path, dirs):
        for path in [directory] if directory.is_file() else sorted(directory.glob("**/metrics.json")):
            found.setdefault(path.resolve(), path)
    return list(found.values())


def _no_constants(name: str) -> None:
    raise BadFile(f"not valid JSON ({name} is not a JSON value)")


def read_record(path: Path) -> tuple[int, dict]:
    """(modification time in ns, the checked record) of one metrics.json; raises BadFile."""
    try:
        mtime = path.stat().st_mtime_ns
        text = path.read_bytes().decode()
    except OSError as error:
        raise BadFile(f"cannot read it ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise BadFile("not valid JSON (not UTF-8 text)") from None
    if not text.strip():
        raise BadFile("empty file")
    try:
        record = json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as error:
        if error.pos >= len(text.rstrip()) or error.msg.startswith("Unterminated string"):  # ran out
            raise BadFile("not valid JSON (truncated?)") from None
        raise BadFile(f"not valid JSON (line {error.lineno} column {error.colno}: {error.msg})") from None
    check(record)
    return mtime, record


_ABSENT = object()


def _wrong(name: str, value: Any, expected: str) -> BadFile:
    if value is _ABSENT:
        return BadFile(f"no {name!r} field (not a regbench metrics.json?)")
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    return BadFile(f"{name!r} is {shown}, expected {expected}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check(record: Any) -> None:
    """Raise BadFile unless `record` has the fields and types the leaderboard reads (notes/schema.md).

    Every job needs `status`; completed and diverged jobs also their identity (`config_hash`,
    `baseline_hash`), `labels`, `technique` and `runs`, each run an int `seed` and numbers or nulls
    for the metrics. Fields the leaderboard does not read are not checked.
    """
    if not isinstance(record, dict):
        raise BadFile(f"not a JSON object (a JSON {type(record).__name__})")
    status = record.get("status", _ABSENT)
    if status not in (*FINISHED, *UNFINISHED, NOT_APPLICABLE):
        raise _wrong("status", status, "one of " + ", ".join((*FINISHED, *UNFINISHED, NOT_APPLICABLE)))
    for key in ("error", "reason", "technique") if status == NOT_APPLICABLE else ("error",):
        if not isinstance(record.get(key), (str, type(None))):
            raise _wrong(key, record[key], "a string or null")
    if status not in FINISHED:
        return
    for key in ("config_hash", "baseline_hash"):
        value = record.get(key, _ABSENT)
        if not (isinstance(value, str) and HASH.fullmatch(value)):
            raise _wrong(key, value, "a lowercase hex string")
    if not isinstance(record.get("technique"), str) or not record["technique"]:
        raise _wrong("technique", record.get("technique", _ABSENT), "a name")
    labels = record.get("labels", _ABSENT)
    if not isinstance(labels, dict):
        raise _wrong("labels", labels, "an object")
    for key in LABELS:
        if not isinstance(labels.get(key), str):
            raise _wrong(f"labels.{key}", labels.get(key, _ABSENT), "a string")
    runs = record.get("runs", _ABSENT)
    if not isinstance(runs, list):
        raise _wrong("runs", runs, "a list")
    for i, run in enumerate(runs):
        if not isinstance(run, dict):
            raise _wrong(f"runs[{i}]", run, "an object")
        seed = run.get("seed", _ABSENT)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise _wrong(f"runs[{i}].seed", seed, "an int")
        if not isinstance(run.get("diverged", False), bool):
            raise _wrong(f"runs[{i}].diverged", run["diverged"], "true or false")
        for key in METRICS:
            if run.get(key) is not None and not _is_number(run[key]):
                raise _wrong(f"runs[{i}].{key}", run[key], "a number or null")
        for key in MEMBER_LISTS:
            values = run.get(key)
            if values is not None and not (isinstance(values, list)
                                           and all(v is None or _is_number(v) for v in values)):
                raise _wrong(f"runs[{i}].{key}", values, "a list of numbers or nulls")
    versions = record.get("versions")
    if versions is not None and not (isinstance(versions, dict)
                                     and all(isinstance(versions.get(k), (str, type(None))) for k in VERSIONED)):
        raise _wrong("versions", versions, "an object of version strings")
    grid = record.get("grid")
    if grid is not None and not (isinstance(grid, dict) and isinstance(grid.get("config_hash"), str)):
        raise _wrong("grid", grid, "an object with a config_hash")
    tuned = record.get("tuned")
    if tuned is not None and not (isinstance(tuned, dict) and isinstance(tuned.get("chosen"), dict)
                                  and isinstance(tuned.get("grid"), str)):
        raise _wrong("tuned", tuned, "an object with the chosen values and the grid's hash")


def tuning_fields(record: dict) -> dict[str, Any]:
    """The TUNING columns of a record's runs (None where it is neither a grid point nor a tuned result)."""
    grid, tuned = record.get("grid") or {}, record.get("tuned") or {}
    chosen = tuned.get("chosen")
    return {"grid": grid.get("config_hash"), "grid_default": bool(grid.get("default")),
            "tuned": " ".join(f"{key}={show(value)}" for key, value in chosen.items()) if chosen else None,
            "tuned_grid": tuned.get("grid") if chosen else None, "tuned_default": tuned.get("default_hash")}


def version_fields(record: dict) -> dict[str, str]:
    """The VERSION_COLUMNS of a record's runs: 'unknown' for a package (or a whole record) without one."""
    versions = record.get("versions") or {}
    return {f"{package}_version": versions.get(package) or UNKNOWN_VERSION for package in VERSIONED}


@dataclass
class Collected:
    """What `collect` read. runs: one row per (config_hash, seed), ordered oldest file first."""
    runs: pd.DataFrame
    statuses: dict[str, int]
    unfinished: list[dict]
    skipped: list[tuple[str, str]]


# path: the job dir of the file the run came from (its curves.csv and predictions.npz are there)
# grid: the grid job's config hash for a grid point (grid_default: the point at the conf/ defaults);
# tuned: the chosen values ('regularizer.l2.strength=0.003') of a tuned result, tuned_grid its grid's hash,
# tuned_default the hash of that grid's default point (regbench.tuning)
TUNING = ["grid", "grid_default", "tuned", "tuned_grid", "tuned_default"]
# <package>_version: the version of each VERSIONED package that wrote the run's file
VERSION_COLUMNS = [f"{package}_version" for package in VERSIONED]
# defaults: the keys its siblings set and this run leaves at their defaults, with their values
# ('regularizer.dropout.p=0.2'), so that a grid's or knob sweep's default row names its value (see `defaults`)
RUN_COLUMNS = ["config_hash", "baseline_hash", "seed", "diverged", *METRICS, "technique", *LABELS,
               *MEMBER_LISTS, "path", *TUNING, *VERSION_COLUMNS, "defaults"]


MISSING = object()


def config_value(record: dict, key: str) -> Any:
    """The value at dotted `key` ('model.hidden') in the record's resolved `config`, else MISSING."""
    node: Any = record.get("config")
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return MISSING
        node = node[part]
    return node


def shown(value: Any) -> str | None:
    """A config value as a label: 64, 0.1, relu, [1, 2]; None where it is MISSING."""
    if value is MISSING:
        return None
    return value if isinstance(value, str) else json.dumps(value)


OLDER_IDENTITY = "[older identity]"


def labels_of(record: dict) -> dict[str, str]:
    """The record's row labels; a result stored under an older identity scheme says so in its setting:
    it cannot share a row with this code's results (its hash is of another kind), and must not look like
    one of them."""
    labels = {name: record["labels"][name] for name in LABELS}
    if identity_scheme(record) != IDENTITY_SCHEME:
        labels["setting"] = f"{labels['setting']} {OLDER_IDENTITY}".strip()
    return labels


def setting_keys(setting: str) -> dict[str, str]:
    """'regularizer.dropout.p=0.1 trainer.epochs=3' -> {key: its part}; parts without '=' are left out."""
    return {part.partition("=")[0]: part for part in setting.split() if "=" in part}


def defaults(runs: pd.DataFrame, configs: dict[str, dict]) -> list[str]:
    """Per run: the keys that other configs of its dataset, model and technique set in their setting and
    its own leaves at the conf/ default, as 'key=value' from its resolved config ('' where none). The
    setting label holds only differences from the defaults, so a knob sweep's or grid's default row would
    otherwise read as nothing at all. Tuned rows neither give nor get them (they state their values)."""
    if runs.empty:
        return []
    plain = runs.tuned.isna()
    keys: dict[tuple, set[str]] = {}
    for (dataset, model, technique), part in runs[plain].groupby(["dataset", "model", "technique"]):
        keys[(dataset, model, technique)] = {key for setting in set(part.setting) for key in setting_keys(setting)}
    out = []
    for run in runs.itertuples():
        missing = sorted(keys.get((run.dataset, run.model, run.technique), set()) - set(setting_keys(run.setting)))
        record = {"config": configs.get(run.config_hash)}
        values = [(key, config_value(record, key)) for key in missing] if pd.isna(run.tuned) else []
        out.append(" ".join(f"{key}={show(value)}" for key, value in values if value is not MISSING))
    return out


def collect(dirs: Iterable[Path | str], by: str | None = None) -> Collected:
    """Read every metrics.json under `dirs`; nothing is printed. With `by` (a dotted config key), each
    run also gets column `by`: that key's value in the file's resolved config as text, None if absent.

    A (config_hash, seed) found in several files counts once: the newest file by mtime wins (ties:
    the later path). Files that cannot be used are returned in `skipped` with the reason; failed,
    interrupted and running jobs in `unfinished`.
    """
    records, skipped = [], []
    for path in find_metrics(dirs):
        try:
            mtime, record = read_record(path)
        except BadFile as error:
            skipped.append((str(path), str(error)))
            continue
        records.append((mtime, str(path), record))
    records.sort(key=lambda item: item[:2])

    runs: dict[tuple[str, int], dict] = {}
    unfinished = []
    configs: dict[str, Any] = {}   # config_hash -> the newest file's resolved config
    for _, path, record in records:
        if record["status"] not in FINISHED:
            why = record.get("reason" if record["status"] == NOT_APPLICABLE else "error")
            error = " ".join(str(why or "").split())  # one line, whatever was written
            unfinished.append({"path": str(Path(path).parent), "status": record["status"], "error": error,
                               "technique": record.get("technique") or "?"})
            continue
        configs[record["config_hash"]] = record.get("config")
        for run in record["runs"]:
            key = (record["config_hash"], run["seed"])
            runs.pop(key, None)  # re-inserted last: the frame stays ordered oldest file first
            runs[key] = {"config_hash": record["config_hash"], "baseline_hash": record["baseline_hash"],
                         "seed": run["seed"], "diverged": run.get("diverged", False),
                         **{metric: run.get(metric) for metric in METRICS},
                         "technique": record["technique"], **labels_of(record),
                         **{key: run.get(key) for key in MEMBER_LISTS}, "path": str(Path(path).parent),
                         **tuning_fields(record), **version_fields(record)}
            if by is not None:
                runs[key]["by"] = shown(config_value(record, by))
    frame = pd.DataFrame(list(runs.values()), columns=RUN_COLUMNS + (["by"] if by is not None else []))
    frame[list(METRICS)] = frame[list(METRICS)].astype(float)  # null -> NaN
    frame["diverged"] = frame["diverged"].astype(bool)
    frame["defaults"] = defaults(frame, configs)
    statuses = dict(Counter(record["status"] for *_, record in records))
    return Collected(frame, statuses, unfinished, skipped)
