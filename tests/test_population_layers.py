"""regbench/models/population.py: fully connected networks run a stacked population without vmap, and
give what vmap over each member's own forward gives: outputs, gradients, second derivatives."""
import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call, vmap

from regbench.models.cnn1d import CNN1D
from regbench.models.mlp import MLP
from regbench.models.population import runs_population
from regbench.models.shallow import Shallow
from regbench.regularizers.dropout import Dropout
from regbench.trainer.loop import build_population, noise_inputs, noisy_modules, population_forward, predict
from regbench.trainer.memory import EVAL_MEMBERS, EVAL_ROWS
from regbench.trainer.streams import Streams


def with_dropout(spec, p=0.3):
    spec.after_activation.append(lambda shape: Dropout(shape, p))
    return spec


def test_fully_connected_networks_run_as_a_population_and_others_under_vmap():
    assert runs_population(MLP().build((40,), 10))
    assert runs_population(with_dropout(MLP()).build((1, 8, 8), 10))
    assert runs_population(Shallow().build((1,), 1))
    assert not runs_population(CNN1D().build((40,), 10))
    assert not runs_population(torch.nn.Sequential(torch.nn.Linear(4, 2)))   # torch's own Linear: vmap


@pytest.mark.parametrize("input_shape", [(40,), (1, 8, 8)])
def test_stacked_forward_and_its_derivatives_equal_vmap_over_members(input_shape):
    P, B = 3, 7
    data = type("D", (), {"input_shape": input_shape, "output_size": 10})()
    model, params = build_population(with_dropout(MLP(hidden=[16, 12])), data, list(range(P)), torch.device("cpu"))
    model.train()
    noise = noise_inputs(noisy_modules(model), Streams(list(range(P)), "cpu"), B)
    x = torch.randn(P, B, *input_shape)
    direct = population_forward(model)
    assert direct is not None
    mapped = vmap(lambda p, xs: functional_call(model, p, (xs,)), randomness="error")

    def grad_norm(forward):
        out = forward({**params, **noise}, x)
        grads = torch.autograd.grad(out.logsumexp(-1).mean(), list(params.values()), create_graph=True)
        norm = sum(g.square().sum() for g in grads)
        return out, grads, torch.autograd.grad(norm, list(params.values()))

    for got, want in zip(grad_norm(direct), grad_norm(mapped)):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)   # float rounding
    # the masks act: a member's dropped units differ from the eval-mode forward
    assert not torch.allclose(direct({**params, **noise}, x), direct(params, x))


def test_one_members_network_is_an_ordinary_network():
    """With one member's (unstacked) weights the layers compute what nn.Flatten and nn.Linear do."""
    model = MLP(hidden=[5]).build((2, 3), 4)
    x = torch.randn(7, 2, 3)
    first, last = model[1], model[-1]
    want = F.linear(torch.relu(F.linear(x.reshape(7, 6), first.weight, first.bias)), last.weight, last.bias)
    torch.testing.assert_close(model(x), want)


@pytest.mark.parametrize("spec", [MLP(hidden=[8]), CNN1D(channels=4)], ids=["stacked", "vmap"])
def test_evaluation_in_tiles_equals_one_pass_over_everything(spec):
    P, n = EVAL_MEMBERS + 3, EVAL_ROWS * 2 + 5          # partial tiles of members and of rows
    data = type("D", (), {"input_shape": (40,), "output_size": 10})()
    model, params = build_population(spec, data, list(range(P)), torch.device("cpu"))
    x = torch.randn(n, 40)
    model.eval()
    with torch.no_grad():
        whole = vmap(lambda p: functional_call(model, p, (x,)))(params)
    torch.testing.assert_close(predict(model, params, x), whole, rtol=1e-5, atol=1e-5)
