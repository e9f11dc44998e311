"""`make bench`: speed of population training, measured side by side in one run.

For each population size P it trains P seeds one after another (P = 1 each) and the same P seeds as
one vectorized population, on MNIST-1D with the default MLP and trainer, and prints seconds per
model and the ratio. Usage: python -m regbench.bench [--epochs 5] [--sizes 8 32] [--device cpu]
"""
from __future__ import annotations

import argparse
import time

import torch
from rich.console import Console
from rich.table import Table

from regbench.data import DATASETS
from regbench.models import MODELS
from regbench.regularizers import REGULARIZERS
from regbench.trainer import TrainerSettings, train_population


def seconds(spec, data, settings, technique: str, seeds: list[int], device: torch.device) -> float:
    hooks = [] if technique == "none" else [REGULARIZERS[technique]()]
    start = time.perf_counter()
    train_population(spec, data, settings, hooks, seeds, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--techniques", nargs="+", default=["none"],
                        help=f"any of: {', '.join(sorted(REGULARIZERS))}")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    data = DATASETS["mnist1d"]().load()
    spec = MODELS["mlp"]()
    settings = TrainerSettings(epochs=args.epochs)
    seconds(spec, data, settings, "none", [0], device)  # warm-up: lazy init, caches

    table = Table(title=f"population vs one-at-a-time, MNIST-1D MLP, {args.epochs} epochs, {device}, "
                        f"{torch.get_num_threads()} threads")
    for column in ("technique", "P", "alone s/model", "population s/model", "speedup"):
        table.add_column(column, justify="right")
    for technique in args.techniques:
        for size in args.sizes:
            seeds = list(range(size))
            alone = sum(seconds(spec, data, settings, technique, [s], device) for s in seeds) / size
            together = seconds(spec, data, settings, technique, seeds, device) / size
            table.add_row(technique, str(size), f"{alone:.3f}", f"{together:.3f}", f"{alone / together:.1f}×")
    Console().print(table)


if __name__ == "__main__":
    main()
