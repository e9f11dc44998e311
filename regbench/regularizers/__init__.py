"""Regularization techniques (UDL chapter 9), one module each, registered by their config name."""
from __future__ import annotations

from regbench.regularizers.l2 import L2
from regbench.regularizers.none import NoRegularizer

REGULARIZERS = {cls.name: cls for cls in (NoRegularizer, L2)}

__all__ = ["REGULARIZERS"]
