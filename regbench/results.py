"""Result files: written atomically (temp file in the same dir, then os.replace), never half-written."""
from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable


# How a result's identity is computed (regbench.identity): results stored under another scheme are never
# reused and are labelled as such in a leaderboard. Here, below every reader, so that reading results
# needs no torch. 1: a hash of the resolved yaml; 2: of the validated settings and the code's revisions.
IDENTITY_SCHEME = 2


def identity_scheme(record: dict) -> int | None:
    """The identity scheme a metrics.json record was stored under; None before there was one (scheme 1)."""
    identity = record.get("identity")
    if isinstance(identity, dict) and isinstance(identity.get("tuned"), dict):   # a tuned result's
        identity = identity["tuned"]
    scheme = identity.get("scheme") if isinstance(identity, dict) else None
    return scheme if isinstance(scheme, int) else None


def _file_mode() -> int:
    """The mode a plain open() would give a new file: 0666 less the process umask (0644 usually).

    mkstemp creates 0600 files; results and caches are shared (a cluster group, another user reading
    a sweep), so they get the usual mode instead. Reading the umask means setting it: done once.
    """
    global _MODE
    if _MODE is None:
        umask = os.umask(0o022)
        os.umask(umask)
        _MODE = 0o666 & ~umask
    return _MODE


_MODE: int | None = None


def write_atomic(path: Path | str, content: str | bytes) -> None:
    """Write `content` to `path` through a temp file in the same dir and os.replace: readers see the
    old file or the new one, never half of either."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _file_mode())
        with os.fdopen(fd, "wb" if isinstance(content, bytes) else "w") as handle:
            handle.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def json_safe(value: Any) -> Any:
    """NaN and infinity become null: metrics.json stays valid JSON for every reader."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def write_json(path: Path | str, payload: dict) -> None:
    write_atomic(path, json.dumps(json_safe(payload), indent=2) + "\n")


def write_npz(path: Path | str, arrays: dict) -> None:
    import numpy as np

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    write_atomic(path, buffer.getvalue())


def write_csv(path: Path | str, rows: Iterable[dict]) -> None:
    rows = list(rows)
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    write_atomic(path, buffer.getvalue())
