"""Shared by the technique tests: a short job end to end through the app's own `execute`."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from regbench.app import execute


def end_to_end(make_cfg, *overrides: str) -> dict:
    """Run the smoke preset with `overrides` as a single job; return its metrics.json."""
    cfg = make_cfg(*overrides)
    with tempfile.TemporaryDirectory() as job_dir:
        execute(cfg, Path(job_dir), list(overrides), multirun=False)
        return json.loads((Path(job_dir) / "metrics.json").read_text())
