"""Regularization techniques (UDL chapter 9), one module each, registered by their config name.

Every module here that defines a `Regularizer` subclass with its own `name` is found at import, so
adding a technique means adding its module, its `conf/regularizer/<name>.yaml` and its test.
"""
from __future__ import annotations

import importlib
import pkgutil

from regbench.trainer.hooks import Regularizer


def discover() -> dict[str, type[Regularizer]]:
    found: dict[str, type[Regularizer]] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if (isinstance(value, type) and issubclass(value, Regularizer) and value.technique
                    and value.__module__ == module.__name__ and "name" in vars(value)):
                found[value.name] = value
    return found


REGULARIZERS = discover()

__all__ = ["REGULARIZERS"]
