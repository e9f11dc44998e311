"""`make bench`: regbench's population training against a plain per-model loop and the arithmetic floor.

Measured side by side in one run, on MNIST-1D with the default MLP (40-100-100-10):
- reference: the loop a user would write (UDL notebook 8.1 style: nn.Sequential, a shuffled
  DataLoader, SGD lr 0.05 momentum 0.9, batch 100, no evaluation), one model after another;
- population: `train_population` with the default TrainerSettings (and its default evaluation) at
  each population size P, for each technique; and the same evaluating only at the end;
- floor: the FLOPs of training one model (6 x sum of layer in x out x examples x epochs) over this
  machine's own float32 matmul rate, i.e. the time the arithmetic alone would take;
- processes: whole-process wall time per model (imports, data loading included) and peak memory of
  the CLI (`python -m regbench ... replicates=M`) and of the reference loop run as its own process,
  for M = 16 and 64 models;
- grid: a grid of l2 strengths x seeds as one job (every value in the population) against the same
  grid as separate jobs, one after another (the basic launcher) and in parallel (joblib, one thread
  each): whole sweeps (`-m`), leaderboard and report included;
- threads: whole CLI processes of the main job (MNIST-1D MLP, replicates=3) and of a heavier one (a
  ResNet on digits) with the default `threads: null` against threads=1 and threads=all (every core), on
  an idle machine and, with `--busy N`, beside N processes that keep a core busy each (a spin loop).
Usage: python -m regbench.bench [--epochs 50] [--sizes 1 4 16 64] [--device cpu] [--threads 2] [--busy 1]
       [--json out.json]      (make bench ARGS="--busy 1")
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import nn

DEFAULT_EPOCHS = 50          # the UDL 8.1 setting, which the targets are stated for
CPU_SIZES = [1, 4, 16, 64]
CUDA_SIZES = CPU_SIZES + [256, 1024]
PROCESS_MODELS = [16, 64]
GRID_VALUES = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]   # l2 strengths: the tuned suite's grid
GRID_SEEDS = 3
# (name, overrides, epochs as a fraction of --epochs) of the jobs the threads table times
THREAD_JOBS = [("mnist1d MLP", ["replicates=3"], 1.0),
               ("digits ResNet", ["dataset=digits", "model=resnet", "replicates=3"], 0.2)]
# a busy process: a Python spin loop that also ends when the benchmark that started it is gone (kill -9)
SPIN = ("import os, sys\n"
        "parent = int(sys.argv[1])\n"
        "while os.getppid() == parent:\n"
        "    for _ in range(100_000):\n"
        "        pass\n")


def data_dir() -> str:
    """The MNIST-1D cache the CLI uses too (conf/dataset/mnist1d.yaml)."""
    return os.environ.get("REGBENCH_DATA_DIR", "~/.cache/regbench")


def cached_draw() -> str:
    """The published MNIST-1D draw's cache file (written if missing), for the reference process."""
    from regbench.data.mnist1d import cache_name, load_cached

    load_cached(data_dir(), 42)
    return str(Path(os.path.expanduser(data_dir())) / cache_name(42))


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


# ---- the reference: what a user writes for one model (own code, nothing from regbench) ----------

def reference_model() -> nn.Sequential:
    return nn.Sequential(nn.Linear(40, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(), nn.Linear(100, 10))


def train_reference(x_train: torch.Tensor, y_train: torch.Tensor, epochs: int, seed: int,
                    device: torch.device) -> nn.Module:
    """One model, UDL 8.1 style: a shuffled DataLoader of batch 100, SGD with momentum, no evaluation."""
    torch.manual_seed(seed)
    model = reference_model().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_function = nn.CrossEntropyLoss()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x_train, y_train),
                                         batch_size=100, shuffle=True)
    for _ in range(epochs):
        for x_batch, y_batch in loader:
            x_batch, y_batch = x_batch.to(device), y_batch.to(device)
            optimizer.zero_grad()
            loss = loss_function(model(x_batch), y_batch)
            loss.backward()
            optimizer.step()
    synchronize(device)
    return model


def reference_seconds(x_train: torch.Tensor, y_train: torch.Tensor, epochs: int, seed: int,
                      device: torch.device) -> float:
    start = time.perf_counter()
    train_reference(x_train, y_train, epochs, seed, device)
    return time.perf_counter() - start


def reference_process(models: int, epochs: int, device: torch.device, data_file: str) -> None:
    """`--reference-only`: the reference as a user's script, data read from the MNIST-1D cache file
    `data_file` (all 4000 training examples, like the CLI with dataset.val_fraction=0); imports torch
    and numpy only."""
    arrays = np.load(data_file)
    x_train = torch.tensor(arrays["x"], dtype=torch.float32)
    y_train = torch.tensor(arrays["y"], dtype=torch.int64)
    for seed in range(models):
        train_reference(x_train, y_train, epochs, seed, device)


# ---- the floor ----------------------------------------------------------------------------------

FLOPS_COUNTED = ("6 x sum over Linear layers of in x out, per training example per epoch: 2 for the "
                 "forward matmul, 4 for the backward (input and weight gradients); biases, activations, "
                 "the loss, the optimizer step and regbench's per-epoch evaluation are not counted")


def linear_shapes(model: nn.Module) -> list[tuple[int, int]]:
    return [(layer.in_features, layer.out_features) for layer in model.modules() if isinstance(layer, nn.Linear)]


def training_flops(model: nn.Module, n_train: int) -> int:
    """FLOPs of one epoch of one model over n_train examples (see FLOPS_COUNTED)."""
    return 6 * sum(fan_in * fan_out for fan_in, fan_out in linear_shapes(model)) * n_train


def matmul_rate(device: torch.device, repeats: int = 3) -> float:
    """This machine's float32 FLOP/s on large square matmuls, at torch's current thread count (best of repeats)."""
    n = 4096 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    calls = 20 if device.type == "cuda" else 4
    torch.mm(a, b)  # warm-up
    synchronize(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            torch.mm(a, b)
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 * calls / best


# ---- regbench ------------------------------------------------------------------------------------

def population_seconds(spec, data, settings, technique: str, seeds: list[int], device: torch.device) -> float:
    from regbench.regularizers import REGULARIZERS
    from regbench.trainer import train_population

    hooks = [] if technique == "none" else [REGULARIZERS[technique]()]
    start = time.perf_counter()
    train_population(spec, data, settings, hooks, seeds, device)
    synchronize(device)
    return time.perf_counter() - start


# Runs argv[1:] and prints its peak resident set size. A child forked from the benchmark itself would
# report the benchmark's own peak (Linux carries the forking process's high-water mark across exec);
# forked from this small interpreter, the figure is the command's own (or this wrapper's few MiB).
PEAK_WRAPPER = ("import resource, subprocess, sys\n"
                "code = subprocess.call(sys.argv[1:])\n"
                "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
                "sys.exit(code)\n")


def run_process(command: list[str]) -> tuple[float, int]:
    """(wall seconds, peak resident bytes) of one whole process; its failure is an error carrying its stderr."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-S", "-c", PEAK_WRAPPER, *command], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    lines = done.stderr.strip().splitlines()
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {chr(10).join(lines[:-1])[-2000:]}")
    return elapsed, int(lines[-1]) * 1024   # Linux reports kilobytes


def measure(epochs: int, sizes: list[int], techniques: list[str], device: torch.device, repeats: int,
            skip_process: bool, process_models: list[int], process_repeats: int) -> dict:
    """Every number of the benchmark, as a JSON-ready dict (seconds are per model, best of `repeats`)."""
    from regbench.data import DATASETS
    from regbench.models import MODELS
    from regbench.trainer import TrainerSettings

    data = DATASETS["mnist1d"](data_dir=data_dir()).load()
    spec = MODELS["mlp"]()
    settings = TrainerSettings(epochs=epochs)
    at_the_end = dataclasses.replace(settings, eval_every=epochs, curve_every=epochs)
    n_train = len(data.y_train)
    x_train, y_train = data.x_train.cpu(), data.y_train.cpu()

    # warm-up: lazy initialisation, allocator and kernel caches
    population_seconds(spec, data, settings, "none", [0], device)
    reference_seconds(x_train, y_train, 1, 0, device)

    model = spec.build(data.input_shape, data.num_classes)
    assert linear_shapes(model) == linear_shapes(reference_model()), "the reference must be the default MLP"
    flops = training_flops(model, n_train)
    rate = matmul_rate(device)
    floor = flops * epochs / rate

    reference = min(reference_seconds(x_train, y_train, epochs, seed, device) for seed in range(repeats))
    rows = []
    for technique in techniques:
        for size in sizes:
            seeds = list(range(size))
            seconds = min(population_seconds(spec, data, settings, technique, seeds, device)
                          for _ in range(repeats)) / size
            end_only = min(population_seconds(spec, data, at_the_end, technique, seeds, device)
                           for _ in range(repeats)) / size
            rows.append({"technique": technique, "P": size, "seconds_per_model": seconds,
                         "reference_over_population": reference / seconds, "floor_fraction": floor / seconds,
                         "seconds_per_model_evaluating_at_end": end_only})

    processes = []
    if not skip_process:
        processes = process_rows(epochs, device, process_models, process_repeats)
    return {
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "torch": torch.__version__, "python": platform.python_version(), "device": str(device),
                    "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else None},
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "epochs": epochs, "repeats": repeats, "process_repeats": process_repeats, "n_train": n_train,
        "evaluation": {"eval_every": settings.eval_every, "curve_every": settings.curve_every},
        "floor": {"flops_per_model_epoch": flops, "counted": FLOPS_COUNTED, "matmul_flops_per_s": rate,
                  "seconds_per_model": floor},
        "reference": {"seconds_per_model": reference, "floor_fraction": floor / reference},
        "population": rows,
        "process": processes,
    }


def process_rows(epochs: int, device: torch.device, models: list[int], repeats: int) -> list[dict]:
    """For each number of models: the reference loop as its own process, then the CLI, best of `repeats`."""
    rows = []
    threads = torch.get_num_threads()  # the timed processes run at this process's thread count
    with tempfile.TemporaryDirectory(prefix="regbench-bench-") as scratch:
        for count in models:
            reference = [sys.executable, "-m", "regbench.bench", "--reference-only", "--data-file", cached_draw(),
                         "--models", str(count),
                         "--epochs", str(epochs), "--device", str(device), "--threads", str(threads)]
            runs = []
            for repeat in range(repeats):
                # a fresh run dir each time, so the CLI never finds a finished job to skip
                cli = [sys.executable, "-m", "regbench", "dataset.val_fraction=0", f"replicates={count}",
                       f"trainer.epochs={epochs}", f"device={device.type}", f"threads={threads}", "progress=false",
                       f"hydra.run.dir={scratch}/run{count}-{repeat}"]
                runs.append((run_process(reference), run_process(cli)))
            loop = min(wall for (wall, _), _ in runs)
            for name, index in (("reference loop", 0), (f"regbench replicates={count}", 1)):
                wall = min(run[index][0] for run in runs)
                rows.append({"name": name, "models": count, "wall_seconds": wall, "seconds_per_model": wall / count,
                             "reference_over_this": loop / wall,
                             "peak_rss_bytes": max(run[index][1] for run in runs)})
    return rows


def grid_rows(epochs: int, device: torch.device, values: list[float], seeds: int, repeats: int) -> list[dict]:
    """The same grid (l2 strength `values` x `seeds`) three ways, each a whole sweep (`-m`, leaderboard
    and report included), best of `repeats`: one job training every value in its population, and one
    job per value run one after another, then run in parallel (joblib, a job per thread, one thread each)."""
    threads = torch.get_num_threads()
    listed = ",".join(map(str, values))
    common = ["-m", "regularizer=l2", f"replicates={seeds}", f"trainer.epochs={epochs}", f"device={device.type}",
              "progress=false"]
    ways = [("grid in one job", 1, [f"regularizer.l2.strength=[{listed}]", f"threads={threads}"]),
            ("a job per value", len(values), [f"regularizer.l2.strength={listed}",
                                                                 f"threads={threads}"]),
            (f"a job per value, joblib x{threads}", len(values),
             [f"regularizer.l2.strength={listed}", "hydra/launcher=joblib", f"hydra.launcher.n_jobs={threads}",
              "threads=1"])]
    rows = []
    with tempfile.TemporaryDirectory(prefix="regbench-bench-grid-") as scratch:
        for k, (name, jobs, extra) in enumerate(ways):
            runs = [run_process([sys.executable, "-m", "regbench", *common, *extra,
                                 f"hydra.sweep.dir={scratch}/way{k}-{repeat}"]) for repeat in range(repeats)]
            # what the sweep wrote: a result per value, in one job dir (the grid) or one each
            written = list(Path(scratch, f"way{k}-0").glob("**/metrics.json"))
            rows.append({"name": name, "jobs": jobs, "models": len(values) * seeds, "results": len(written),
                         "job_dirs": len({path.relative_to(scratch).parts[1] for path in written}),
                         "wall_seconds": min(wall for wall, _ in runs),
                         "peak_rss_bytes": max(peak for _, peak in runs)})
    for row in rows:
        row["over_grid"] = row["wall_seconds"] / rows[0]["wall_seconds"]
    return rows


@contextmanager
def busy_processes(count: int) -> Iterator[list[subprocess.Popen]]:
    """`count` processes that keep a core busy each while the block runs; stopped when it ends, on an
    error or Ctrl-C too (and each stops by itself once this process is gone)."""
    spinners: list[subprocess.Popen] = []
    try:
        for _ in range(count):
            spinners.append(subprocess.Popen([sys.executable, "-S", "-c", SPIN, str(os.getpid())],
                                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL))
        time.sleep(0.2 * bool(count))  # let the scheduler see them before the timed process starts
        yield spinners
    finally:
        for spinner in spinners:
            spinner.kill()
        for spinner in spinners:
            spinner.wait()


def thread_rows(epochs: int, busy: int, repeats: int, jobs: list[tuple[str, list[str], float]] = THREAD_JOBS,
                ) -> list[dict]:
    """Whole CLI processes of each of `jobs` with the default `threads: null`, threads=1 and threads=all
    (every core), idle and (busy > 0) beside `busy` busy processes; best of `repeats`, taken in turns so
    that every setting sees the same machine. Each row has the process's wall time, its training time
    (metrics.json wall_seconds) and the threads torch used; `over_best` is its wall time over the best
    setting's under the same load, `over_all` over threads=all's (the default before threads: null chose)."""
    from regbench.jobs import cores

    settings = [("default", []), ("threads=1", ["threads=1"]), ("threads=all", [f"threads={cores()}"])]
    loads = [0, busy] if busy else [0]
    times: dict[tuple, list[tuple[float, float, int]]] = {}
    with tempfile.TemporaryDirectory(prefix="regbench-bench-threads-") as scratch:
        for repeat in range(repeats):
            for load in loads:
                with busy_processes(load):
                    for j, (_, overrides, fraction) in enumerate(jobs):
                        for k, (setting, extra) in enumerate(settings):
                            run_dir = Path(scratch, f"{repeat}-{load}-{j}-{k}")
                            wall, _ = run_process([sys.executable, "-m", "regbench", *overrides, *extra,
                                                   f"trainer.epochs={max(1, round(epochs * fraction))}",
                                                   "device=cpu", "progress=false", f"hydra.run.dir={run_dir}"])
                            record = json.loads((run_dir / "metrics.json").read_text())
                            times.setdefault((load, j, setting), []).append(
                                (wall, record["wall_seconds"], record["threads"]))
    rows = []
    for load in loads:
        for j, (name, _, fraction) in enumerate(jobs):
            cells = {setting: min(times[load, j, setting]) for setting, _ in settings}
            best = min(wall for wall, _, _ in cells.values())
            for setting, (wall, train, threads) in cells.items():
                rows.append({"job": name, "epochs": max(1, round(epochs * fraction)), "busy": load,
                             "setting": setting, "threads": threads, "wall_seconds": wall,
                             "train_seconds": train, "over_best": wall / best,
                             "over_all": wall / cells["threads=all"][0]})
    return rows


def print_tables(result: dict, techniques: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    machine = result["machine"]
    floor = result["floor"]
    console.print(f"MNIST-1D, MLP 40-100-100-10, {result['epochs']} epochs of {result['n_train']} examples, "
                  f"{machine['device']} ({machine['device_name'] or machine['processor']}), "
                  f"{machine['torch_threads']} threads, torch {machine['torch']}, best of {result['repeats']}; "
                  f"evaluation: validation every {result['evaluation']['eval_every']} epoch(s), every split every "
                  f"{result['evaluation']['curve_every']} and at the end")
    console.print(f"floor: {floor['flops_per_model_epoch'] / 1e6:.1f} MFLOP per model-epoch at the measured "
                  f"{floor['matmul_flops_per_s'] / 1e9:.1f} GFLOP/s = {floor['seconds_per_model']:.4f} s per model")
    reference = result["reference"]
    for technique in techniques:
        table = Table(title=f"in-process training, technique {technique}")
        for column in ("trainer", "P", "s/model", "loop s ÷ this s", "% of floor", "s/model, eval only at end"):
            table.add_column(column, justify="right")
        table.add_row("reference loop", "1", f"{reference['seconds_per_model']:.4f}", "1.0×",
                      f"{100 * reference['floor_fraction']:.1f}%", "(none)")
        for row in result["population"]:
            if row["technique"] == technique:
                table.add_row("population", str(row["P"]), f"{row['seconds_per_model']:.4f}",
                              f"{row['reference_over_population']:.1f}×", f"{100 * row['floor_fraction']:.1f}%",
                              f"{row['seconds_per_model_evaluating_at_end']:.4f}")
        console.print(table)
    if result["process"]:
        table = Table(title="whole processes (imports, data, evaluation and files included)")
        for column in ("process", "models", "wall s", "s/model", "loop ÷ this", "peak MiB"):
            table.add_column(column, justify="right")
        for row in result["process"]:
            table.add_row(row["name"], str(row["models"]), f"{row['wall_seconds']:.2f}",
                          f"{row['seconds_per_model']:.4f}", f"{row['reference_over_this']:.1f}×",
                          f"{row['peak_rss_bytes'] / 2 ** 20:.0f}")
        console.print(table)
    if result.get("grid"):
        grid = result["grid"]
        table = Table(title=f"a grid of {len(grid[0]['values'])} l2 strengths x {grid[0]['seeds']} seeds, "
                            "whole sweeps (-m, leaderboard and report included)")
        for column in ("how", "jobs", "models", "wall s", "this ÷ one job", "peak MiB"):
            table.add_column(column, justify="left" if column == "how" else "right")
        for row in grid:
            table.add_row(row["name"], str(row["jobs"]), str(row["models"]), f"{row['wall_seconds']:.2f}",
                          f"{row['over_grid']:.1f}×", f"{row['peak_rss_bytes'] / 2 ** 20:.0f}")
        console.print(table)
    if result.get("threads"):
        table = Table(title=f"threads: whole processes (replicates=3), the default (threads: null) against "
                            f"threads=1 and threads=all ({machine['cpu_count']} cores), idle and beside busy "
                            "processes; ÷ best: within the same load")
        for column in ("job", "load", "threads=", "used", "wall s", "train s", "÷ best", "÷ all"):
            table.add_column(column, justify="left" if column in ("job", "load", "threads=") else "right")
        first_lines = {"default": lambda row: row["job"], "threads=1": lambda row: f"{row['epochs']} epochs"}
        for row in result["threads"]:
            table.add_row(first_lines.get(row["setting"], lambda _: "")(row),
                          f"{row['busy']} busy" if row["busy"] else "idle",
                          {"default": "null"}.get(row["setting"], row["setting"].partition("=")[2]),
                          str(row["threads"]), f"{row['wall_seconds']:.2f}", f"{row['train_seconds']:.2f}",
                          f"{row['over_best']:.2f}×", f"{row['over_all']:.2f}×")
        console.print(table)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help=f"default {DEFAULT_EPOCHS}")
    parser.add_argument("--sizes", type=int, nargs="+",
                        help=f"population sizes P; default {CPU_SIZES}, on cuda {CUDA_SIZES}")
    parser.add_argument("--techniques", nargs="+", default=["none"],
                        help="regularizers for the population rows, one table each (default none)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="default cuda when available, else cpu")
    parser.add_argument("--repeats", type=int, default=3, help="each time is the best of this many runs (default 3)")
    parser.add_argument("--threads", type=int,
                        help="CPU threads for torch, in this process and the timed ones (default: torch's default)")
    parser.add_argument("--skip-process", action="store_true", help="leave out the whole-process timings")
    parser.add_argument("--process-models", type=int, nargs="+", default=PROCESS_MODELS,
                        help=f"models the timed whole processes train (default {PROCESS_MODELS})")
    parser.add_argument("--process-repeats", type=int, default=1,
                        help="each process time is the best of this many runs (default 1: the 64-model "
                             "reference process alone takes ~1.5 minutes)")
    parser.add_argument("--skip-grid", action="store_true", help="leave out the grid-in-population timings")
    parser.add_argument("--grid-values", type=float, nargs="+", default=GRID_VALUES,
                        help=f"l2 strengths of the timed grid (default {GRID_VALUES})")
    parser.add_argument("--grid-seeds", type=int, default=GRID_SEEDS,
                        help=f"seeds of each value in the timed grid (default {GRID_SEEDS})")
    parser.add_argument("--busy", type=int, default=0,
                        help="also time the threads table beside this many busy processes (a spin loop each; "
                             "default 0: idle only)")
    parser.add_argument("--skip-threads", action="store_true", help="leave out the threads table")
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    parser.add_argument("--reference-only", action="store_true",
                        help="only train the reference loop, --models times, and print nothing "
                             "(the process timings run this)")
    parser.add_argument("--data-file", help="the MNIST-1D draw --reference-only reads (the benchmark passes its cache file)")
    parser.add_argument("--models", type=int, default=PROCESS_MODELS[0],
                        help=f"models --reference-only trains one after another (default {PROCESS_MODELS[0]})")
    args = parser.parse_args(argv)
    for key in ("epochs", "repeats", "models", "threads", "process_repeats", "grid_seeds"):
        if getattr(args, key) is not None and getattr(args, key) < 1:
            parser.error(f"--{key.replace('_', '-')}={getattr(args, key)} is not allowed: expected an integer >= 1")
    if args.busy < 0:
        parser.error(f"--busy={args.busy} is not allowed: expected an integer >= 0 (busy processes)")
    for key in ("sizes", "process_models"):
        if getattr(args, key) is not None and min(getattr(args, key)) < 1:
            parser.error(f"--{key.replace('_', '-')}={getattr(args, key)} is not allowed: expected integers >= 1")
    try:
        device = torch.device(args.device)
    except RuntimeError:
        parser.error(f"--device={args.device} is not allowed: expected cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device={args.device} is not allowed here: no CUDA device is available (use cpu)")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.reference_only:
        if args.data_file is None:
            parser.error("--reference-only needs --data-file (the MNIST-1D cache file it trains on)")
        reference_process(args.models, args.epochs, device, args.data_file)
        return
    from regbench.regularizers import REGULARIZERS

    unknown = [t for t in args.techniques if t != "none" and t not in REGULARIZERS]
    if unknown:
        parser.error(f"--techniques {' '.join(unknown)} not known: expected any of {', '.join(sorted(REGULARIZERS))}")
    sizes = args.sizes or (CUDA_SIZES if device.type == "cuda" else CPU_SIZES)
    if len(set(args.grid_values)) < 2 or min(args.grid_values) < 0:
        parser.error(f"--grid-values {' '.join(map(str, args.grid_values))} is not allowed: expected two or "
                     "more distinct strengths >= 0")
    result = measure(args.epochs, sizes, args.techniques, device, args.repeats, args.skip_process,
                     args.process_models, args.process_repeats)
    if not args.skip_grid:
        result["grid"] = [{**row, "values": args.grid_values, "seeds": args.grid_seeds}
                          for row in grid_rows(args.epochs, device, args.grid_values, args.grid_seeds,
                                               args.process_repeats)]
    if not args.skip_threads:
        result["threads"] = thread_rows(args.epochs, args.busy, args.process_repeats)
    print_tables(result, args.techniques)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
