"""Turning config nodes into validated objects: the ground floor every other module builds on.

Hydra checks that keys exist (the composed config is in struct mode); the dataclasses built here check
values, so a bad value fails before training with one line naming the key and what is allowed. This
module imports nothing of regbench's: the Hydra wiring (resolvers, the ConfigStore) lives beside the app
(regbench/wiring.py), which may import any layer.
"""
from __future__ import annotations

import dataclasses
import importlib.resources
import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from omegaconf import DictConfig, OmegaConf

# regbench/conf: in the repo a symlink to the top-level conf/, in a wheel the packaged copy (pyproject.toml).
CONF_DIR = (Path(__file__).parent / "conf").resolve()


class ConfigError(ValueError):
    """A user mistake in the config. The command line prints it as one line, without a traceback."""


def check_number(key: str, value: Any, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False, integer: bool = False,
                 optional: bool = False) -> None:
    """Raise ConfigError unless `value` is a number in the stated range (None passes when optional)."""
    if value is None and optional:
        return
    bounds = []
    if low is not None:
        bounds.append(f"{'>' if low_open else '>='} {low}")
    if high is not None:
        bounds.append(f"{'<' if high_open else '<='} {high}")
    allowed = ("an integer" if integer else "a number") + "".join(f" {b}" for b in bounds[:1])
    allowed += "".join(f" and {b}" for b in bounds[1:]) + (" or null" if optional else "")
    numeric = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not numeric or (isinstance(value, float) and not math.isfinite(value)):
        raise ConfigError(f"{key}={value!r} is not allowed: expected {allowed}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        raise ConfigError(f"{key}={value!r} is out of range: expected {allowed}")


def check_choice(key: str, value: Any, choices: tuple | list) -> None:
    if value not in choices:
        raise ConfigError(f"{key}={value!r} is not allowed: choose one of {', '.join(map(str, choices))}")


def show(value: Any) -> str:
    """A value as it would be typed on the command line: null, true, 0.001, [400,400]."""
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(show(v) for v in value) + "]"
    return json.dumps(value) if isinstance(value, (bool, type(None))) else str(value)


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> {'a.b.c': leaf}; lists are leaves."""
    if not isinstance(node, dict) or (prefix and not node):
        return {prefix: node}
    flat: dict[str, Any] = {}
    for key, value in node.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def canonical(node: Any) -> Any:
    """Numbers as floats (1 and 1.0 are the same setting), recursively; bools and strings as they are."""
    if isinstance(node, dict):
        return {str(k): canonical(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [canonical(v) for v in node]
    if isinstance(node, (int, float)) and not isinstance(node, bool):
        return float(node)
    return node


def top_level(cfg: Mapping | DictConfig, resolve: bool = True) -> dict[str, Any]:
    """The config as plain containers without the hydra node; interpolations resolved when `resolve`."""
    if OmegaConf.is_config(cfg):
        return {key: OmegaConf.to_container(cfg[key], resolve=resolve) if OmegaConf.is_config(cfg[key])
                else cfg[key] for key in cfg if key != "hydra"}
    return {key: value for key, value in cfg.items() if key != "hydra"}


def plain(node: Any) -> Any:
    """A config node as plain Python containers (resolving interpolations)."""
    if isinstance(node, DictConfig) or OmegaConf.is_config(node):
        return OmegaConf.to_container(node, resolve=True)
    return node


def build(key: str, cls: type, node: Mapping | DictConfig | None, **extra: Any) -> Any:
    """Construct dataclass `cls` from the config node at `key`; unknown or missing fields name the key.

    The dataclass validates its values in `__post_init__` (Hydra 1.3 does not run it while composing).
    """
    values = dict(plain(node) or {})
    values.update(extra)
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]} is not a setting of {key}: allowed are {', '.join(sorted(fields))}")
    try:
        return cls(**values)
    except TypeError as error:  # a required field is missing
        raise ConfigError(f"{key}: {error}") from None


def build_named(key: str, registry: Mapping[str, type], node: Mapping | DictConfig) -> Any:
    """Construct the registry entry named by `node.name` (dataset and model groups)."""
    values = dict(plain(node) or {})
    name = values.pop("name", None)
    check_choice(f"{key}.name", name, sorted(registry))
    return build(key, registry[name], values)


def search_path() -> tuple[tuple[str, str], ...]:
    """(schema, path) of each config source of this Hydra run, in Hydra's order: conf/, then --config-dir
    and hydra.searchpath dirs. Outside a run (a test that composes) conf/ alone."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return (("file", str(CONF_DIR)),)
    return tuple((source.schema, source.path) for source in HydraConfig.get().runtime.config_sources)


def option_file(group: str, option: str) -> dict:
    """<group>/<option>.yaml as plain containers, interpolations unresolved ({} if absent), from the first
    config dir on the search path that holds it, as Hydra picks it (a plug-in's under --config-dir too)."""
    return _option_file(search_path(), group, option)


@lru_cache(maxsize=None)
def _option_file(sources: tuple[tuple[str, str], ...], group: str, option: str) -> dict:
    relative = f"{group}/{option}.yaml".lstrip("/")
    for schema, path in sources:
        if schema == "file":
            file = Path(path) / relative
        elif schema == "pkg":  # a package's folder: hydra.searchpath=[pkg://mypkg.conf]
            try:
                file = importlib.resources.files(path.replace("/", ".")).joinpath(relative)
            except (ModuleNotFoundError, ValueError, TypeError):
                continue
        else:  # structured: the ConfigStore holds no option files (only regbench_base)
            continue
        if file.is_file():
            with file.open(encoding="utf-8") as stream:
                return OmegaConf.to_container(OmegaConf.load(stream))
    return {}
