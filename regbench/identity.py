"""The identity of a result: what the run computes, never the command line that asked for it.

A result may be reused (a rerun skips it, the leaderboard pools its seeds with others, merged sweeps
line up) only when it was computed by the same settings *and* the same semantics of the code. Both are
in `config_hash`, the one function that says whether two results belong together:

- the settings as the code will use them, built from the validated objects (regbench.settings), not
  from the raw yaml: what cannot change a number is left out (seeds, device, threads, progress, force,
  data_dir, the `baseline` choice, hydra.*, settings of techniques that are not selected,
  `trainer.curve_every`, which only thins the curves), and equal computations are written one way
  (`trainer_identity`, `dataset_identity`: `epochs` while `steps` is set, SGD's momentum null = 0.9,
  `lr_gamma` without the step schedule, a batch as large as the training set = full batch, `n_train`
  equal to every example = null);
- `revisions`: CORE_REVISION for the trainer, the metrics and the splits every job shares, and each
  dataset's, model's and technique's own `revision` (a class attribute, 1 unless bumped). Whoever
  changes what a config computes bumps the revision of what they changed (tests/test_revisions.py
  fails when a reference run's numbers move and no revision did), and results of the older code are
  then never reused: they stay readable, in rows of their own;
- `SCHEME`: how this identity is computed. Results stored under an older scheme are kept and shown, and
  a rerun trains their configs again (regbench.jobs.older_results says so once).

The regbench and torch versions are not part of it: a result of another release with the same
revisions is reused and pooled, and the leaderboard says in one line when a row pools several versions.
`tuned_identity`, a grid's value chosen on validation, is the grid's identity with the seeds that chose.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from typing import Any, Mapping

from omegaconf import DictConfig, OmegaConf

from regbench.config import ConfigError, canonical, flatten, option_file, show, top_level
from regbench.results import IDENTITY_SCHEME
from regbench.settings import Settings, selected_techniques, technique_label
from regbench.trainer.loop import SGD_MOMENTUM

SCHEME = IDENTITY_SCHEME   # regbench/results.py: 1, a hash of the resolved yaml; 2, of the validated settings
CORE_REVISION = 1   # bump when the trainer, the metrics or the data splits change what any config computes
# Top-level keys that say which seeds, where or how a job runs, or what it is compared with.
NOT_IDENTITY = ("seed", "replicates", "device", "threads", "progress", "force", "baseline", "selection_seeds")
HASH_LENGTH = 16


def fields_of(obj: Any) -> dict[str, Any]:
    """A validated dataclass's settings (its init fields), less `data_dir` (where files are cached)."""
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.init and f.name != "data_dir"}


def revision(obj: Any) -> int:
    """A dataset's, model's or technique's `revision` class attribute (1 where a plug-in sets none)."""
    return int(getattr(type(obj), "revision", 1))


def training_examples(dataset: Any) -> int | None:
    """The examples a job trains on, where known without loading the data (else None): `n_train`, or
    every example left after the validation split (`pool_size`)."""
    n_train = getattr(dataset, "n_train", None)
    if isinstance(n_train, int):
        return n_train
    pool = getattr(dataset, "pool_size", None)
    return pool() if callable(pool) else None


def dataset_identity(name: str, dataset: Any) -> dict[str, Any]:
    """The dataset's settings, `n_train` equal to every example written as null, and the version of what
    generated it (`source`, e.g. the mnist1d package) where it is generated."""
    values = {"name": name, **fields_of(dataset)}
    pool = getattr(dataset, "pool_size", None)
    if values.get("n_train") is not None and callable(pool) and values["n_train"] == pool():
        values["n_train"] = None
    source = getattr(dataset, "source", None)
    if callable(source) and source() is not None:
        values["source"] = source()
    return values


def trainer_identity(trainer: Any, examples: int | None) -> dict[str, Any]:
    """What the trainer will do, each computation written one way (see the module docstring)."""
    values = fields_of(trainer)
    values.pop("curve_every")                       # thins the curves, never changes a number
    if values["steps"] is not None:
        values.pop("epochs")                        # steps decide how long it trains
    if values["optimizer"] == "sgd":
        values["momentum"] = SGD_MOMENTUM if values["momentum"] is None else values["momentum"]
    else:
        values.pop("momentum")                      # only SGD has one (validation refuses it elsewhere)
    if values["lr_schedule"] != "step":
        values.pop("lr_step_epochs")
        values.pop("lr_gamma")
    if examples is not None and (values["batch_size"] is None or values["batch_size"] >= examples):
        values["batch_size"] = None                 # one batch of every example: full-batch descent
    return values


def identity_of(settings: Settings, point: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The identity of a job's settings: with a grid, its lists of values; with `point` (a grid point,
    {'regularizer.l2.strength': 1e-3}), the identity of the job that trains that point alone."""
    regularizer = {}
    for hook in settings.regularizers:
        regularizer[hook.name] = {"name": hook.name, **fields_of(hook)}
    for key, values in settings.grid.items():
        _, name, knob = key.split(".")
        regularizer[name][knob] = list(values) if point is None else point[key]
    identity = {
        "scheme": SCHEME,
        "dataset": dataset_identity(settings.dataset_name, settings.dataset),
        "model": {"name": settings.model.name, **fields_of(settings.model)},
        "trainer": trainer_identity(settings.trainer, training_examples(settings.dataset)),
        "regularizer": regularizer,
        "revisions": {"core": CORE_REVISION, "dataset": revision(settings.dataset),
                      "model": revision(settings.model),
                      **{f"regularizer.{hook.name}": revision(hook) for hook in settings.regularizers}},
    }
    return json.loads(json.dumps(identity))  # plain JSON values (tuples as lists); digest makes 1 and 1.0 one


def identity_config(source: Settings | Mapping | DictConfig, point: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """`identity_of` the settings, or of a config (composed, or a record's resolved `config`) resolved first."""
    settings = source if isinstance(source, Settings) else Settings.from_config(source)
    return identity_of(settings, point)


def digest(node: Any) -> str:
    """A stable hash of plain containers: the same on every machine, Python and dict order."""
    text = json.dumps(canonical(node), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]


def config_hash(source: Settings | Mapping | DictConfig, point: Mapping[str, Any] | None = None) -> str:
    """A stable hash of `identity_config(source, point)`."""
    return digest(identity_config(source, point))


def tuned_identity(grid_identity: dict[str, Any], selection_seeds: list[int]) -> dict[str, Any]:
    """The identity of a grid's tuned result: the grid's identity (its lists of values) and the seeds
    whose validation metric chose the value; its runs are keyed by the other seeds."""
    return {"tuned": grid_identity, "selection_seeds": list(selection_seeds)}


def baseline_config(cfg: Mapping | DictConfig) -> DictConfig:
    """The config of the `none` run this job is compared with: no regularizer, plus `cfg.baseline`.

    The `baseline` values must name existing settings outside `regularizer` (and not seeds or devices).
    """
    raw = top_level(cfg, resolve=False)
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


_ABSENT = object()


def _selected_raw(cfg: Mapping | DictConfig) -> dict[str, Any]:
    """The config before interpolation, its `regularizer` node limited to the selected techniques."""
    raw = top_level(cfg, resolve=False)
    raw["regularizer"] = {name: raw["regularizer"][name] for name in selected_techniques(raw.get("regularizer"))}
    return raw


def _with_defaults(raw: dict[str, Any], keys: list[str], defaults: dict[str, Any]) -> dict[str, Any]:
    """A copy of `raw` with each of `keys` put back to its conf/ default (removed where conf/ has none)."""
    probe = OmegaConf.create(copy.deepcopy(raw))
    for key in keys:
        value = defaults.get(key, _ABSENT)
        if value is _ABSENT:
            parent, _, leaf = key.rpartition(".")
            node = OmegaConf.select(probe, parent) if parent else probe
            if node is not None and leaf in node:
                node.pop(leaf)
        else:
            OmegaConf.update(probe, key, value, merge=False)
    return probe


def _defaults_of(raw: dict[str, Any]) -> dict[str, Any]:
    return flatten(conf_defaults(raw["dataset"].get("name"), raw["model"].get("name"), list(raw["regularizer"])))


def differences(cfg: Mapping | DictConfig, identity: dict[str, Any] | None = None) -> dict[str, Any]:
    """{dotted key: value before interpolation} where the config differs from the conf/ defaults of its
    dataset, model and techniques in what it computes: a key counts when putting it back to its default
    changes the identity. So a default that interpolates and is written out (grad_penalty's strength
    0.0125 at lr 0.05, its default lr/4), a setting equal to what its null means (SGD's momentum 0.9)
    and a setting the run does not use (`epochs` under `steps`, `curve_every`) are no setting of their own."""
    raw = _selected_raw(cfg)
    defaults = _defaults_of(raw)
    identity = identity_config(cfg) if identity is None else identity   # the caller's, where it has it
    found = {}
    for key, value in sorted(flatten({k: v for k, v in raw.items() if k not in NOT_IDENTITY}).items()):
        if key in ("dataset.name", "model.name") or (key.startswith("regularizer.") and key.endswith(".name")):
            continue
        if key in defaults and canonical(defaults[key]) == canonical(value):
            continue
        if _probe_identity(raw, [key], defaults) != identity:
            found[key] = value
    return found


def _probe_identity(raw: dict[str, Any], keys: list[str], defaults: dict[str, Any]) -> dict[str, Any] | None:
    """The identity of `raw` with `keys` put back to their defaults; None where that config does not
    validate (a required setting, dataset=file's path, has no default to go back to)."""
    try:
        return identity_config(_with_defaults(raw, keys, defaults))
    except ConfigError:
        return None


def at_defaults(cfg: Mapping | DictConfig, keys: list[str]) -> bool:
    """Whether putting every one of `keys` back to its conf/ default leaves the identity as it is (a
    default that interpolates, grad_penalty's lr/4, resolved in this config)."""
    raw = _selected_raw(cfg)
    defaults = _defaults_of(raw)
    if any(key not in defaults for key in keys):
        return False
    return _probe_identity(raw, keys, defaults) == identity_config(cfg)


def labels(cfg: Mapping | DictConfig, leave_out: tuple[str, ...] = ()) -> dict[str, str]:
    """Row labels: the config's `differences` from the conf/ defaults of the same options, less the
    keys `leave_out` (a grid's knobs, which a tuned row states itself).

    {'dataset': 'mnist1d[n_train=500]', 'model': 'mlp', 'setting': 'trainer.epochs=3'}: dataset and model
    differences go into their labels, the rest (trainer, technique knobs) into `setting`, each value
    shown as the identity holds it (so equal computations read alike: a batch of every example is
    `batch_size=null` however it was written), else resolved.
    """
    identity = identity_config(cfg)
    resolved = {**flatten(top_level(cfg, resolve=True)), **flatten(identity)}
    raw = _selected_raw(cfg)
    parts: dict[str, list[str]] = {"dataset": [], "model": [], "setting": []}
    for key, value in differences(cfg, identity).items():
        if key in leave_out:
            continue
        head, _, rest = key.partition(".")
        text = f"{rest if head in ('dataset', 'model') else key}={show(resolved.get(key, value))}"
        parts[head if head in ("dataset", "model") else "setting"].append(text)

    def label(name: str, conditions: list[str]) -> str:
        return f"{name}[{' '.join(conditions)}]" if conditions else name

    return {"dataset": label(raw["dataset"].get("name"), parts["dataset"]),
            "model": label(raw["model"].get("name"), parts["model"]), "setting": " ".join(parts["setting"])}


def dir_name(technique: str, config_hash: str, seeds: list[int]) -> str:
    """'<technique>-<hash 8>-s<first seed>[-<last>]': a result's dir, named by what it computes."""
    return f"{technique}-{config_hash[:8]}-s{seeds[0]}" + (f"-{seeds[-1]}" if len(seeds) > 1 else "")


def job_dir_name(cfg: Mapping | DictConfig) -> str:
    """A sweep job's subdir, named by what it computes: '<technique>-<hash 8>-s<first seed>[-<last>]'.

    Rerunning a sweep lands every job in its own earlier dir (resume), a different sweep writes beside
    it, and two jobs of one sweep that compute the same thing (`none` beside every value of a knob)
    share one dir, so that one trains and the other finds it taken. A config that does not validate
    gets '<technique or invalid>-invalid-<hash of its raw values>-…': the job records its error there.
    """
    try:
        settings = Settings.from_config(cfg)
    except ConfigError:
        raw = top_level(cfg, resolve=False)
        try:
            label = technique_label(selected_techniques(raw.get("regularizer")))
        except ConfigError:
            label = "invalid"
        return f"{label}-invalid-{invalid_hash(cfg)[:8]}-s{raw.get('seed')}"
    return dir_name(settings.technique, config_hash(settings), settings.seeds)


def invalid_hash(cfg: Mapping | DictConfig) -> str:
    """What identifies a config that does not validate: its raw values. Only its failure is recorded
    under it (never a result to reuse), so that the same mistake run again replaces its own record."""
    return digest({"invalid": top_level(cfg, resolve=False)})
