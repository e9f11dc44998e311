"""Per-member random streams.

Every draw traces back to a member's seed and a stream name, so a member trained inside a population
sees exactly the random numbers it would see trained alone, and adding one technique never shifts
another technique's draws. Draws are one call per member (a generator cannot batch across members).
"""
from __future__ import annotations

import zlib

import numpy as np
import torch


# A population member: (replicate seed, ensemble member index). A plain run is member 0 of its seed.
Member = tuple[int, int]


def as_members(members: list[Member] | list[int]) -> list[Member]:
    """(seed, member) pairs as given; a plain seed means (seed, 0)."""
    return [m if isinstance(m, tuple) else (int(m), 0) for m in members]


def derive_seed(seed: int, stream: str, member: int = 0) -> int:
    """A 63-bit seed for (seed, ensemble member, stream name), well mixed and stable across platforms."""
    entropy = [seed, member, zlib.crc32(stream.encode())]
    state = np.random.SeedSequence(entropy).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


class Streams:
    """Lazily created torch.Generators, one per (member, stream); draws come back stacked as (P, ...).

    `members` are (seed, ensemble index) pairs, or plain seeds meaning (seed, 0).
    """

    def __init__(self, members: list[Member] | list[int], device: torch.device) -> None:
        self.members = as_members(members)
        self.device = torch.device(device)
        self._generators: dict[str, list[torch.Generator]] = {}

    def generators(self, stream: str) -> list[torch.Generator]:
        if stream not in self._generators:
            made = []
            for seed, member in self.members:
                generator = torch.Generator(device=self.device)
                generator.manual_seed(derive_seed(seed, stream, member))
                made.append(generator)
            self._generators[stream] = made
        return self._generators[stream]

    def uniform(self, stream: str, shape: tuple[int, ...]) -> torch.Tensor:
        """U[0, 1) draws of `shape` per member: (P, *shape)."""
        return torch.stack([torch.rand(shape, generator=g, device=self.device)
                            for g in self.generators(stream)])

    def normal(self, stream: str, shape: tuple[int, ...]) -> torch.Tensor:
        """Standard normal draws of `shape` per member: (P, *shape)."""
        return torch.stack([torch.randn(shape, generator=g, device=self.device)
                            for g in self.generators(stream)])

    def randint(self, stream: str, high: int, shape: tuple[int, ...]) -> torch.Tensor:
        """Integers in [0, high) per member: (P, *shape)."""
        return torch.stack([torch.randint(high, shape, generator=g, device=self.device)
                            for g in self.generators(stream)])

    def permutation(self, stream: str, n: int) -> torch.Tensor:
        """A random order of range(n) per member: (P, n)."""
        return torch.stack([torch.randperm(n, generator=g, device=self.device)
                            for g in self.generators(stream)])
