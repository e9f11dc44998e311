"""The trainer's optimizers and learning-rate schedules, on torch's own update kernels.

torch.optim's Optimizer classes import torch._dynamo and sympy on first use (`add_param_group` and every
`step()` go through dynamo's guards), about 1 s of every job's start; the functional `torch.optim.sgd.sgd`
and `torch.optim.adam.adam` are the same update arithmetic without that import. The schedules are
torch's StepLR and CosineAnnealingLR in closed form.
"""
from __future__ import annotations

import math

import torch
from torch.optim.adam import adam
from torch.optim.sgd import sgd

ADAM_BETAS = (0.9, 0.999)   # torch.optim.Adam's defaults
ADAM_EPS = 1e-8


class Optimizer:
    """SGD with (heavy-ball) momentum or Adam over `params`, each update elementwise; `lr` is set by the
    trainer each epoch. AdamW without weight decay is Adam (decay is the `weight_decay` technique)."""

    def __init__(self, params: list[torch.Tensor], kind: str, lr: float, momentum: float = 0.0) -> None:
        self.params = list(params)
        self.kind = kind
        self.lr = lr
        self.momentum = momentum
        self.momentum_buffers: list[torch.Tensor | None] = [None] * len(self.params)  # filled by the first step
        if kind != "sgd":
            self.exp_avgs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
            self.exp_avg_sqs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
            self.steps = [torch.tensor(0.0) for _ in self.params]

    def zero_grad(self) -> None:
        for param in self.params:
            param.grad = None

    @torch.no_grad()
    def step(self) -> None:
        with_grad = [i for i, p in enumerate(self.params) if p.grad is not None]
        params = [self.params[i] for i in with_grad]
        grads = [self.params[i].grad for i in with_grad]
        if self.kind == "sgd":
            buffers = [self.momentum_buffers[i] for i in with_grad]
            sgd(params, grads, buffers, weight_decay=0.0, momentum=self.momentum, lr=self.lr, dampening=0.0,
                nesterov=False, maximize=False)
            for i, buffer in zip(with_grad, buffers):   # sgd() creates them on the first step
                self.momentum_buffers[i] = buffer
            return
        adam(params, grads, [self.exp_avgs[i] for i in with_grad], [self.exp_avg_sqs[i] for i in with_grad], [],
             [self.steps[i] for i in with_grad], amsgrad=False, beta1=ADAM_BETAS[0], beta2=ADAM_BETAS[1],
             lr=self.lr, weight_decay=0.0, eps=ADAM_EPS, maximize=False)


def scheduled_lr(schedule: str, lr: float, epoch: int, epochs: int, step_epochs: int, gamma: float) -> float:
    """The learning rate of 0-based `epoch`: constant ('none'), × gamma every step_epochs ('step'), or
    cosine-annealed to 0 over `epochs` ('cosine')."""
    if schedule == "step":
        return lr * gamma ** (epoch // step_epochs)
    if schedule == "cosine":
        return lr * (1 + math.cos(math.pi * epoch / epochs)) / 2
    return lr
