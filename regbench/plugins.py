"""Plug-ins: datasets, models and techniques from other distributions, found through entry points.

A distribution declares them in its pyproject.toml, one group per registry:

    [project.entry-points."regbench.datasets"]
    mydata = "mypkg.data:MyData"

and they join the registries of the built-ins (DATASETS, MODELS, REGULARIZERS) under the entry point's
name. Their option files (dataset/mydata.yaml, ...) come through Hydra's search path (--config-dir).
Nothing is imported while no plug-in is installed: finding none costs one scan of the installed
distributions' metadata.
"""
from __future__ import annotations

import dataclasses
from importlib.metadata import EntryPoint, entry_points

from regbench.config import ConfigError

# config group -> entry point group
GROUPS = {"dataset": "regbench.datasets", "model": "regbench.models", "regularizer": "regbench.regularizers"}
_loaded = False


def installed() -> dict[str, list[EntryPoint]]:
    """The plug-ins of each config group, from metadata alone (nothing imported)."""
    found = entry_points()
    return {group: sorted(found.select(group=name), key=lambda e: e.name) for group, name in GROUPS.items()}


def describe(entry: EntryPoint) -> str:
    dist = f"{entry.dist.name} {entry.dist.version}" if entry.dist else "an unknown distribution"
    return f"entry point {entry.group}:{entry.name} = {entry.value} (distribution {dist})"


# What a plug-in of each config group must be.
WANTED = {"dataset": "a dataclass with a load() method that returns a regbench.data.Data",
          "model": "a dataclass subclass of regbench.models.ModelSpec whose class attribute `name` is {name!r}",
          "regularizer": "a dataclass subclass of regbench.trainer.Regularizer whose class attribute `name` is {name!r}"}


def fits(group: str, name: str, value: object) -> bool:
    """Whether `value`, loaded from the entry point `name`, can serve as an option of `group` (WANTED)."""
    from regbench.models import ModelSpec
    from regbench.trainer.hooks import Regularizer

    if not (isinstance(value, type) and dataclasses.is_dataclass(value)):
        return False
    if group == "dataset":
        return callable(getattr(value, "load", None))
    base = ModelSpec if group == "model" else Regularizer
    return issubclass(value, base) and getattr(value, "technique", True) and getattr(value, "name", None) == name


def load() -> None:
    """Add the installed plug-ins to the registries, once per process.

    A plug-in that cannot be imported, is not the right kind of class, or takes a name already used
    raises ConfigError naming its entry point and distribution; the registries are then left as they were.
    """
    global _loaded
    if _loaded:
        return
    from regbench.data import DATASETS
    from regbench.models import MODELS
    from regbench.regularizers import REGULARIZERS

    registries = {"dataset": DATASETS, "model": MODELS, "regularizer": REGULARIZERS}
    added: dict[str, dict[str, tuple[type, EntryPoint]]] = {group: {} for group in GROUPS}
    for group, entries in installed().items():
        for entry in entries:
            if entry.name in registries[group]:
                raise ConfigError(f"{describe(entry)} takes the name of the built-in {group} {entry.name}: "
                                  "rename the entry point")
            if entry.name in added[group]:
                raise ConfigError(f"{describe(entry)} takes the name of {describe(added[group][entry.name][1])}: "
                                  "rename one of them")
            try:
                value = entry.load()
            except Exception as error:  # a plug-in's import may raise anything
                raise ConfigError(f"{describe(entry)} could not be imported: {type(error).__name__}: {error}") from None
            if not fits(group, entry.name, value):
                raise ConfigError(f"{describe(entry)} is {value!r}, not a {group} plug-in: expected "
                                  + WANTED[group].format(name=entry.name))
            added[group][entry.name] = (value, entry)
    for group, plugins in added.items():
        registries[group].update({name: cls for name, (cls, _) in plugins.items()})
    _loaded = True


def help_text() -> str:
    """The `--help` section listing the installed plug-ins ('' when there are none)."""
    lines = [f"{group}: " + ", ".join(f"{e.name} ({e.dist.name if e.dist else '?'})" for e in entries)
             for group, entries in installed().items() if entries]
    if not lines:
        return ""
    return ("\n== Plug-ins ==\nInstalled through entry points; select one with its option file on the config "
            "search path (--config-dir DIR with DIR/dataset/NAME.yaml, ...)\n\n" + "\n".join(lines) + "\n\n")
