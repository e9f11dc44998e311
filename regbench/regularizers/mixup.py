"""Mixup: x' = λ·x + (1-λ)·x_j, y' = λ·y + (1-λ)·y_j, λ ~ Beta(α, α), j a random partner in the batch
(Zhang et al. 2018, "mixup: Beyond Empirical Risk Minimization"; timm `data/mixup.py`).

Classification mixes one-hot (or soft) targets; regression mixes the real-valued targets themselves.

λ is drawn per example and per member, the partner from a per-member permutation of the batch. Beta
comes from two Gamma draws, each made from the member's own normal/uniform streams (torch.distributions
would read the global RNG).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from regbench.config import check_number
from regbench.regularizers.label_smoothing import as_probabilities
from regbench.trainer.hooks import Regularizer, broadcast, is_off

# Marsaglia-Tsang proposals tried per Gamma draw. Each is accepted with probability >= 0.95 (shape >= 1),
# so all 8 fail with probability < 4e-11; then the last proposal is used anyway.
PROPOSALS = 8


def log_gamma_sample(alpha: float | torch.Tensor, normal: torch.Tensor, uniform: torch.Tensor,
                     boost: torch.Tensor) -> torch.Tensor:
    """log of Gamma(alpha, 1) draws from standard draws, without data-dependent loops.

    normal, uniform: (..., PROPOSALS) N(0,1) and U[0,1) draws; boost: (...) U[0,1) draws. Returns (...).
    alpha: a number, or a tensor that broadcasts against boost (one shape per member); either way it is
    computed with as a tensor of the draws' dtype, so a member's draws do not depend on which it was.
    Marsaglia & Tsang (2000) at shape alpha + 1, then Gamma(alpha) = Gamma(alpha + 1)·U^(1/alpha), in
    log space so that small alpha cannot underflow to 0.
    """
    alpha = torch.as_tensor(alpha, dtype=boost.dtype, device=boost.device)
    d = alpha.unsqueeze(-1) + 1 - 1 / 3 if alpha.dim() else alpha + 1 - 1 / 3   # against the proposals' dim
    c = 1 / (9 * d) ** 0.5
    v = (1 + c * normal) ** 3
    log_v = torch.log(v.clamp_min(1e-30))
    accept = (v > 0) & (torch.log1p(-uniform) < 0.5 * normal ** 2 + d - d * v + d * log_v)
    accept[..., -1] = True                                     # fallback: the last proposal
    first = accept.to(torch.int8).argmax(-1, keepdim=True)     # index of the first accepted proposal
    log_g = (torch.log(d) + log_v).gather(-1, first).squeeze(-1)
    return log_g + torch.log1p(-boost) / alpha                 # 1 - U is in (0, 1]: log stays finite


def beta_sample(alpha: float | torch.Tensor, normal: torch.Tensor, uniform: torch.Tensor,
                boost: torch.Tensor) -> torch.Tensor:
    """Beta(alpha, alpha) draws X / (X + Y) for X, Y ~ Gamma(alpha).

    normal, uniform: (..., 2, PROPOSALS); boost: (..., 2); alpha a number or a tensor that broadcasts
    against boost. Returns (...) in [0, 1].
    """
    log_g = log_gamma_sample(alpha, normal, uniform, boost)   # (..., 2)
    return torch.sigmoid(log_g[..., 0] - log_g[..., 1])


def mixup(x: torch.Tensor, targets: torch.Tensor, lam: torch.Tensor,
          partner: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix each example with its partner.

    x: (P, B, *input); targets: (P, B, K) probabilities; lam: (P, B) weights of the example itself;
    partner: (P, B) batch positions. lam = 1 is the identity.
    """
    members = torch.arange(x.shape[0], device=x.device)[:, None]   # (P, 1)
    lam_x = lam.reshape(*lam.shape, *([1] * (x.dim() - 2)))          # (P, B, 1, ...)
    mixed_x = lam_x * x + (1 - lam_x) * x[members, partner]
    mixed_y = lam[..., None] * targets + (1 - lam[..., None]) * targets[members, partner]
    return mixed_x, mixed_y


@dataclass
class Mixup(Regularizer):
    alpha: float = 0.2
    name = "mixup"
    member_knobs = ("alpha",)
    order = 60  # after input augmentations (50) act on single examples; before label smoothing (70)

    def __post_init__(self) -> None:
        check_number("regularizer.mixup.alpha", self.alpha, low=0.0)

    def batch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if is_off(self.alpha):  # Beta(α, α) -> λ ∈ {0, 1} as α -> 0: a plain example, no mixing
            return x, y
        B = x.shape[1]
        boost = self.streams.uniform(self.stream("lambda-boost"), (B, 2))                         # (P, B, 2)
        lam = beta_sample(broadcast(self.alpha, boost),
                          self.streams.normal(self.stream("lambda-normal"), (B, 2, PROPOSALS)),
                          self.streams.uniform(self.stream("lambda-accept"), (B, 2, PROPOSALS)),
                          boost).to(x.dtype)                                                      # (P, B)
        if isinstance(self.alpha, torch.Tensor):  # a grid's members at α = 0 do not mix
            lam = torch.where(broadcast(self.alpha, lam) > 0, lam, 1.0)
        partner = self.streams.permutation(self.stream("partner"), B)                             # (P, B)
        if self.data.task == "regression":
            targets = y.to(x.dtype).reshape(*y.shape[:2], -1)                                     # (P, B, D)
            mixed_x, mixed_y = mixup(x, targets, lam, partner)
            return mixed_x, mixed_y.reshape(y.shape)
        targets = as_probabilities(y, self.data.num_classes, x.dtype)                             # (P, B, K)
        return mixup(x, targets, lam, partner)
