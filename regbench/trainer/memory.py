"""A population too large for memory is refused up front with one line, not killed by the OOM killer
minutes later: peak bytes are estimated from one template model before any member is built.

The estimate is generous on purpose (it must never be the reason an ordinary job fails, and it only
has to catch populations that are off by a large factor):
  params      P x parameters x STATE_COPIES floats (the weights, their gradients, optimizer state,
              early stopping's best weights, copies while stacking and restoring stopped members)
  training    P x batch x activations x BACKWARD_FACTOR floats (saved activations, their gradients)
  evaluation  min(P, EVAL_MEMBERS) x min(rows, EVAL_ROWS) x activations floats (`predict`'s tile, no
              graph) plus P x rows x outputs x OUTPUT_COPIES floats (outputs of a whole split, softmax, losses)
  gathered    GATHER_FLOATS floats (a block of the epoch's training inputs, gathered at once)
  indices     P x N x INDEX_COPIES int64 (training rows, labels, the epoch's order, resamples)
  members     P x MEMBER_OVERHEAD bytes (each member's nn.Module while building, its generators)
where activations = floats of one example's input and of every leaf module's output in a forward pass.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from regbench.config import ConfigError
from regbench.data.base import Data
from regbench.models.base import ModelSpec
from regbench.trainer.streams import Member, as_members

EVAL_ROWS = 1024           # `predict` evaluates tiles of EVAL_MEMBERS members x EVAL_ROWS rows: measured
EVAL_MEMBERS = 16          # 2-3x faster than the whole population at once at P >= 64 (they stay in cache)
GATHER_FLOATS = 2 ** 22    # training inputs gathered at once (16 MiB): a whole epoch's for small data
FLOAT_BYTES = 4
INDEX_BYTES = 8
STATE_COPIES = 8
BACKWARD_FACTOR = 3
OUTPUT_COPIES = 4
INDEX_COPIES = 4
MEMBER_OVERHEAD = 64 * 1024
GIB = 2 ** 30


@dataclass
class Footprint:
    """Sizes that set a population's memory: per member and per example."""
    members: int            # P
    param_floats: int       # parameters of one member
    activation_floats: int  # floats one example leaves in a forward pass (input included)
    output_floats: int      # outputs of one example
    batch: int              # training rows per step
    train_rows: int         # N
    largest_split: int      # rows of the largest evaluated split

    def bytes(self) -> int:
        """Estimated peak bytes of training and evaluating the population (see the module docstring)."""
        P = self.members
        params = P * self.param_floats * STATE_COPIES * FLOAT_BYTES
        training = P * self.batch * self.activation_floats * BACKWARD_FACTOR * FLOAT_BYTES
        evaluation = (min(P, EVAL_MEMBERS) * min(self.largest_split, EVAL_ROWS) * self.activation_floats
                      + P * self.largest_split * self.output_floats * OUTPUT_COPIES) * FLOAT_BYTES
        indices = P * self.train_rows * INDEX_COPIES * INDEX_BYTES
        gathered = GATHER_FLOATS * FLOAT_BYTES
        return params + max(training, evaluation) + gathered + indices + P * MEMBER_OVERHEAD


def activation_floats(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, int]:
    """(floats of one example's input and of every leaf module's output, floats of the model's output),
    measured by an eval-mode forward pass of one example through `model`."""
    sizes: list[int] = []
    leaves = [module for module in model.modules() if not any(True for _ in module.children())]
    handles = [leaf.register_forward_hook(lambda _module, _inputs, output: sizes.append(
        output.numel() if isinstance(output, torch.Tensor) else 0)) for leaf in leaves]
    try:
        with torch.no_grad():
            output = model.eval()(torch.zeros(1, *input_shape))
    finally:
        for handle in handles:
            handle.remove()
    return math.prod(input_shape) + sum(sizes), output.numel()


def footprint(spec: ModelSpec, data: Data, batch_size: int | None, members: int, output_size: int) -> Footprint:
    """The sizes of a population of `members` models built from `spec` for `data`, from one template."""
    with torch.random.fork_rng(devices=[]):  # the template's init draws must not move global RNG state
        template = spec.build(data.input_shape, output_size)
    activations, outputs = activation_floats(template, data.input_shape)
    N = len(data.y_train)
    return Footprint(members=members, param_floats=sum(p.numel() for p in template.parameters()),
                     activation_floats=activations, output_floats=outputs, batch=batch_size or N,
                     train_rows=N, largest_split=max(len(data.y_train), len(data.y_val), len(data.y_test)))


def available_bytes(device: torch.device) -> int | None:
    """Memory a job can still take: free memory of a CUDA device; on the CPU Linux's MemAvailable,
    capped by the process's cgroup (v2) limit. None where it cannot be told."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        meminfo = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    found = re.search(r"^MemAvailable:\s+(\d+) kB", meminfo, re.MULTILINE)
    if found is None:
        return None
    available = int(found.group(1)) * 1024
    limit = cgroup_room()
    return available if limit is None else min(available, limit)


def cgroup_room() -> int | None:
    """memory.max - memory.current of this process's cgroup v2 (a SLURM job, a container); None if unset."""
    try:
        line = next(line for line in Path("/proc/self/cgroup").read_text().splitlines() if line.startswith("0::"))
        group = Path("/sys/fs/cgroup") / line[3:].lstrip("/")
        limit = (group / "memory.max").read_text().strip()
        used = int((group / "memory.current").read_text())
    except (OSError, StopIteration, ValueError):
        return None
    return None if limit == "max" else max(int(limit) - used, 0)


def gib(value: int) -> str:
    return f"{value / GIB:.0f}" if value >= 10 * GIB else f"{value / GIB:.1f}"


def check_memory(spec: ModelSpec, data: Data, batch_size: int | None, population: list[Member],
                 output_size: int, device: torch.device) -> None:
    """Raise ConfigError (one line) when the population's estimated peak exceeds the memory available."""
    available = available_bytes(device)
    if available is None:
        return
    need = footprint(spec, data, batch_size, len(population), output_size).bytes()
    if need <= available:
        return
    replicates = len({seed for seed, _ in as_members(population)})
    members = len(population) // replicates
    size = f"replicates={replicates}" + (f" with ensemble members {members}" if members > 1 else "")
    raise ConfigError(f"{size} needs about {gib(need)} GiB (estimated), but {gib(available)} GiB are "
                      f"available on {device}: lower replicates")


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3   # glibc mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 * 2 ** 20   # the largest glibc accepts on 64-bit: bigger blocks are still mmapped
TRIM_THRESHOLD = 2 ** 30


def reuse_freed_memory() -> None:
    """Let glibc keep freed blocks (up to MMAP_THRESHOLD each) for the next allocation instead of unmapping them.

    A training step frees and reallocates the same activation buffers; by default glibc hands blocks
    over its mmap threshold back to the kernel, and each step then faults their pages in again (29k
    page faults in 5 epochs at P = 16, ~8% of the time). A no-op where the C library is not glibc."""
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
