import pytest
import torch
from torch.func import functional_call, vmap

from regbench.regularizers.grad_penalty import GradPenalty, grad_norm_squared
from tests.regularizers.helpers import end_to_end


def setup():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))
    params = {n: torch.randn(2, *p.shape, dtype=torch.float64, requires_grad=True)
              for n, p in model.named_parameters()}
    x = torch.randn(2, 8, 4, dtype=torch.float64)
    y = torch.randint(0, 3, (2, 8))
    model = model.double()

    def losses(p):
        return vmap(lambda q, xs, ys: torch.nn.functional.cross_entropy(functional_call(model, q, (xs,)), ys))(p, x, y)
    return params, losses


def test_penalty_is_the_squared_norm_of_each_members_own_gradient():
    params, losses = setup()
    value = grad_norm_squared(losses(params), params)
    for m in range(2):
        grads = torch.autograd.grad(losses(params)[m], list(params.values()))
        torch.testing.assert_close(value[m], sum(g[m].pow(2).sum() for g in grads))


def test_penalty_gradient_matches_finite_differences():
    params, losses = setup()
    penalty = GradPenalty(strength=0.3).penalty(params, losses(params)).sum()
    analytic = torch.autograd.grad(penalty, params["0.weight"])[0]
    eps = 1e-6
    for index in [(0, 0, 0), (1, 2, 3), (0, 4, 1)]:
        def at(shift):
            shifted = {n: p.detach().clone().requires_grad_() for n, p in params.items()}
            with torch.no_grad():
                shifted["0.weight"][index] += shift
            return GradPenalty(strength=0.3).penalty(shifted, losses(shifted)).sum().item()
        numeric = (at(eps) - at(-eps)) / (2 * eps)
        assert abs(numeric - analytic[index].item()) < 1e-6 * max(1.0, abs(numeric))


@pytest.mark.slow
def test_grad_penalty_end_to_end(make_cfg):
    record = end_to_end(make_cfg, "regularizer=grad_penalty", "trainer.batch_size=null")
    none = end_to_end(make_cfg, "regularizer=none", "trainer.batch_size=null")
    assert record["status"] == "completed" and record["technique"] == "grad_penalty"
    # the penalty reaches the step: pulling the loss gradient down slows fitting the training set
    assert record["runs"][0]["train_loss"] > none["runs"][0]["train_loss"]
