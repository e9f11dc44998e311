"""The identity of a result: the resolved config that produced it, never the command line that asked.

`config_hash` is the one function that says whether two results belong together (`tuned_hash`, a grid's
value chosen on validation, hashes the grid's config with the seeds that chose, through the same digest). Everything that reads
results (resume, the leaderboard, merged sweeps) keys runs by (config_hash, seed). The hash covers the
resolved config less what cannot change a run's numbers: the seeds (per run), where and how it runs
(device, threads, progress, force, data_dir, hydra.*), the `baseline` choice (which row it is compared
with, not what it computes) and the settings of techniques that are not selected.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

from omegaconf import DictConfig, OmegaConf

from regbench.config import ConfigError, option_file

# Top-level keys that say which seeds, where or how a job runs, or what it is compared with.
NOT_IDENTITY = ("seed", "replicates", "device", "threads", "progress", "force", "baseline", "selection_seeds")
HASH_LENGTH = 16


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


def _top_level(cfg: Mapping | DictConfig, resolve: bool) -> dict[str, Any]:
    """The config as plain containers without the hydra node; interpolations resolved in place."""
    if OmegaConf.is_config(cfg):
        return {key: OmegaConf.to_container(cfg[key], resolve=resolve) if OmegaConf.is_config(cfg[key])
                else cfg[key] for key in cfg if key != "hydra"}
    return {key: value for key, value in cfg.items() if key != "hydra"}


def _strip(config: dict[str, Any]) -> dict[str, Any]:
    """What identifies a result: no NOT_IDENTITY keys, no data_dir anywhere, selected techniques only."""
    def without_data_dir(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: without_data_dir(v) for k, v in node.items() if k != "data_dir"}
        if isinstance(node, list):
            return [without_data_dir(v) for v in node]
        return node

    kept = {key: value for key, value in config.items() if key not in NOT_IDENTITY}
    chosen = selected_techniques(kept.get("regularizer"))
    kept["regularizer"] = {name: kept["regularizer"][name] for name in chosen}
    return without_data_dir(kept)


def canonical(node: Any) -> Any:
    """Numbers as floats (1 and 1.0 are the same setting), recursively; bools and strings as they are."""
    if isinstance(node, dict):
        return {str(k): canonical(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [canonical(v) for v in node]
    if isinstance(node, (int, float)) and not isinstance(node, bool):
        return float(node)
    return node


def identity_config(cfg: Mapping | DictConfig) -> dict[str, Any]:
    """The resolved config that a result's numbers depend on (see the module docstring)."""
    return _strip(_top_level(cfg, resolve=True))


def digest(node: Any) -> str:
    """A stable hash of plain containers: the same on every machine, Python and dict order."""
    text = json.dumps(canonical(node), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]


def config_hash(cfg: Mapping | DictConfig) -> str:
    """A stable hash of `identity_config(cfg)`."""
    return digest(identity_config(cfg))


def tuned_hash(cfg: Mapping | DictConfig, selection_seeds: list[int]) -> str:
    """The identity of a grid's tuned result: the grid's config (its lists of values) and the seeds whose
    validation metric chose the value; its runs are keyed by the other seeds."""
    return digest({"tuned": identity_config(cfg), "selection_seeds": list(selection_seeds)})


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> {'a.b.c': leaf}; lists are leaves."""
    if not isinstance(node, dict) or (prefix and not node):
        return {prefix: node}
    flat: dict[str, Any] = {}
    for key, value in node.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def baseline_config(cfg: Mapping | DictConfig) -> DictConfig:
    """The config of the `none` run this job is compared with: no regularizer, plus `cfg.baseline`.

    The `baseline` values must name existing settings outside `regularizer` (and not seeds or devices).
    """
    raw = _top_level(cfg, resolve=False)
    moves = flatten(raw.get("baseline") or {})
    for key in moves:
        head = key.split(".", 1)[0]
        if not key or head == "regularizer" or head in NOT_IDENTITY or key not in flatten(raw):
            raise ConfigError(f"baseline.{key} is not allowed: baseline values move the `none` run a job "
                              "is compared with, so they name existing dataset/model/trainer settings")
    base = OmegaConf.create(raw)
    base.regularizer = {"none": {"name": "none"}}
    for key, value in moves.items():
        OmegaConf.update(base, key, value, merge=False)
    return base


def baseline_hash(cfg: Mapping | DictConfig) -> str:
    return config_hash(baseline_config(cfg))


def conf_defaults(dataset: str, model: str, techniques: list[str], trainer: str = "default") -> dict[str, Any]:
    """The config conf/ composes for these options with no other override (interpolations unresolved);
    the trainer includes the dataset's own trainer defaults (conf/dataset_trainer/<dataset>.yaml)."""
    root = {k: v for k, v in option_file("", "config").items() if k != "defaults"}
    root.update(dataset=option_file("dataset", dataset), model=option_file("model", model),
                trainer={**option_file("trainer", trainer), **option_file("dataset_trainer", dataset)},
                regularizer={name: option_file("regularizer", name) for name in techniques})
    return root


def show(value: Any) -> str:
    """A value as it would be typed on the command line: null, true, 0.001, [400,400]."""
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(show(v) for v in value) + "]"
    return json.dumps(value) if isinstance(value, (bool, type(None))) else str(value)


def differences(cfg: Mapping | DictConfig) -> dict[str, Any]:
    """{dotted key: value before interpolation} where the config differs from the conf/ defaults of its
    dataset, model and techniques (names left out). A default that interpolates counts as the same
    setting when it is written out: grad_penalty's strength 0.0125 at lr 0.05 is its default lr/4."""
    raw = _strip(_top_level(cfg, resolve=False))
    dataset, model = raw["dataset"].get("name"), raw["model"].get("name")
    defaults = flatten(_strip(conf_defaults(dataset, model, list(raw["regularizer"]))))

    def same(key: str, value: Any) -> bool:
        if key not in defaults:
            return False
        if canonical(defaults[key]) == canonical(value):
            return True
        interpolated = isinstance(defaults[key], str) and "${" in defaults[key]
        return interpolated and OmegaConf.is_config(cfg) and at_defaults(cfg, [key])

    return {key: value for key, value in sorted(flatten(raw).items())
            if not (key in ("dataset.name", "model.name") or (key.startswith("regularizer.") and key.endswith(".name")))
            and not same(key, value)}


def at_defaults(cfg: DictConfig, keys: list[str]) -> bool:
    """Whether the resolved config holds the conf/ default value at every one of `keys` (a default that
    interpolates, grad_penalty's lr/4, is resolved in this config)."""
    raw = _strip(_top_level(cfg, resolve=False))
    defaults = flatten(_strip(conf_defaults(raw["dataset"].get("name"), raw["model"].get("name"),
                                            list(raw["regularizer"]))))
    probe = OmegaConf.create(_top_level(cfg, resolve=False))
    for key in keys:
        if key not in defaults:
            return False
        OmegaConf.update(probe, key, defaults[key], merge=False)
        if canonical(OmegaConf.select(probe, key)) != canonical(OmegaConf.select(cfg, key)):
            return False
    return True


def labels(cfg: Mapping | DictConfig, leave_out: tuple[str, ...] = ()) -> dict[str, str]:
    """Row labels: the resolved config's difference from the conf/ defaults of the same options, less
    the keys `leave_out` (a grid's knobs, which a tuned row states itself).

    {'dataset': 'mnist1d[n_train=500]', 'model': 'mlp', 'setting': 'trainer.epochs=3'}: dataset and model
    differences go into their labels, the rest (trainer, technique knobs) into `setting`. Values are
    compared before interpolation (grad_penalty's strength `${div:${trainer.lr},4}` follows trainer.lr
    and is no difference of its own) and shown resolved.
    """
    resolved = flatten(identity_config(cfg))
    raw = _strip(_top_level(cfg, resolve=False))
    dataset, model = raw["dataset"].get("name"), raw["model"].get("name")
    parts: dict[str, list[str]] = {"dataset": [], "model": [], "setting": []}
    for key, value in differences(cfg).items():
        if key in leave_out:
            continue
        head, _, rest = key.partition(".")
        text = f"{rest if head in ('dataset', 'model') else key}={show(resolved.get(key, value))}"
        parts[head if head in ("dataset", "model") else "setting"].append(text)

    def label(name: str, conditions: list[str]) -> str:
        return f"{name}[{' '.join(conditions)}]" if conditions else name

    return {"dataset": label(dataset, parts["dataset"]), "model": label(model, parts["model"]),
            "setting": " ".join(parts["setting"])}


def job_dir_name(cfg: Mapping | DictConfig) -> str:
    """A sweep job's subdir, named by what it computes: '<technique>-<hash 8>-s<first seed>[-<last>]'.

    Rerunning a sweep lands every job in its own earlier dir (resume), a different sweep writes beside
    it, and two jobs of one sweep that compute the same thing (`none` beside every value of a knob)
    share one dir, so that one trains and the other finds it taken.
    """
    regularizer = cfg["regularizer"]
    if OmegaConf.is_config(regularizer):
        regularizer = OmegaConf.to_container(regularizer, resolve=False)
    seed, replicates = cfg["seed"], cfg["replicates"]
    seeds = f"s{seed}"
    if isinstance(seed, int) and isinstance(replicates, int) and replicates > 1:
        seeds += f"-{seed + replicates - 1}"
    return f"{technique_label(selected_techniques(regularizer))}-{config_hash(cfg)[:8]}-{seeds}"
