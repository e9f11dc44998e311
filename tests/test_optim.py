"""regbench/trainer/optim.py: the same updates and learning rates as torch.optim's classes, without them."""
import math

import pytest
import torch

from regbench.trainer.optim import Optimizer, scheduled_lr


@pytest.mark.parametrize("kind, reference", [
    ("sgd", lambda ps, lr: torch.optim.SGD(ps, lr=lr, momentum=0.9)),
    ("adam", lambda ps, lr: torch.optim.Adam(ps, lr=lr)),
    ("adamw", lambda ps, lr: torch.optim.AdamW(ps, lr=lr, weight_decay=0.0)),
])
def test_updates_equal_torch_optims_step_for_step(kind, reference):
    torch.manual_seed(0)
    start = [torch.randn(3, 4), torch.randn(5), torch.randn(2)]
    ours = [p.clone().requires_grad_() for p in start]
    theirs = [p.clone().requires_grad_() for p in start]
    mine = Optimizer(ours, kind, lr=0.1, momentum=0.9 if kind == "sgd" else 0.0)
    torch_optimizer = reference(theirs, 0.1)
    for step in range(4):
        lr = 0.1 * 0.5 ** (step // 2)                       # a schedule changes the rate between steps
        mine.lr = lr
        for group in torch_optimizer.param_groups:
            group["lr"] = lr
        for params, optimizer in ((ours, mine), (theirs, torch_optimizer)):
            optimizer.zero_grad()
            # the last parameter takes no gradient at the first steps (a frozen one): it must stay put
            loss = params[0].square().sum() + params[1].sin().sum() + (params[2].sum() if step >= 2 else 0)
            loss.backward()
            optimizer.step()
        for mine_param, torch_param in zip(ours, theirs):
            torch.testing.assert_close(mine_param, torch_param, rtol=0, atol=0)
    assert not torch.equal(ours[0], start[0])


@pytest.mark.parametrize("schedule, make", [
    ("step", lambda opt: torch.optim.lr_scheduler.StepLR(opt, 3, 0.5)),
    ("cosine", lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, 10)),
    ("none", None),
])
def test_learning_rates_equal_torch_schedulers(schedule, make):
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.05)
    scheduler = make(optimizer) if make else None
    for epoch in range(10):
        assert scheduled_lr(schedule, 0.05, epoch, 10, 3, 0.5) == pytest.approx(optimizer.param_groups[0]["lr"],
                                                                                  rel=1e-12, abs=1e-15)
        optimizer.step()
        if scheduler:
            scheduler.step()
    assert scheduled_lr("cosine", 0.05, 5, 10, 3, 0.5) == pytest.approx(0.025)
    assert scheduled_lr("step", 0.05, 6, 10, 3, 0.5) == pytest.approx(0.0125)
    assert math.isclose(scheduled_lr("none", 0.05, 9, 10, 3, 0.5), 0.05)


@pytest.mark.slow
def test_a_training_job_never_imports_dynamo():
    """torch.optim's classes import torch._dynamo and sympy (~1 s of each job's start): a real job in a
    fresh process must not."""
    import subprocess
    import sys

    code = ("import sys, torch\n"
            "from regbench.trainer import TrainerSettings, train_population\n"
            "from regbench.models import MODELS\n"
            "from regbench.data.base import Data\n"
            "x = torch.randn(40, 40); y = torch.randint(0, 10, (40,))\n"
            "data = Data(name='t', x_train=x, y_train=y, x_val=x[:8], y_val=y[:8], x_test=x[:8], y_test=y[:8],"
            " num_classes=10, modality='signal')\n"
            "for optimizer in ('sgd', 'adam'):\n"
            "    train_population(MODELS['mlp'](), data, TrainerSettings(epochs=2, optimizer=optimizer, batch_size=10),"
            " [], [0, 1], torch.device('cpu'))\n"
            "print(sorted(m for m in ('torch._dynamo', 'sympy') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
