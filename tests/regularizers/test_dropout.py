import copy
import dataclasses

import pytest
import torch
from torch.func import functional_call, vmap

from regbench.experiment import Experiment
from regbench.models import CNN1D, MLP
from regbench.regularizers.dropout import Dropout, DropoutRegularizer, dropout
from regbench.trainer.loop import noisy_modules, train_population
from tests.regularizers.helpers import CPU, end_to_end


def test_identity_in_eval_and_at_zero_rate():
    x, noise = torch.randn(4, 7), torch.rand(4, 7)
    assert dropout(x, noise, 0.5, training=False) is x
    assert dropout(x, noise, 0.0, training=True) is x
    assert dropout(x, None, 0.5, training=True) is x


def test_drops_units_below_p_and_scales_the_rest():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0])
    noise = torch.tensor([0.1, 0.25, 0.26, 0.9])
    torch.testing.assert_close(dropout(x, noise, 0.25, training=True), torch.tensor([0.0, 8 / 3, 4.0, 16 / 3]))


def test_drop_rate_and_mean_on_a_large_batch():
    generator = torch.Generator().manual_seed(0)
    x = torch.ones(100_000)
    out = dropout(x, torch.rand(100_000, generator=generator), 0.3, training=True)
    assert (out == 0).float().mean() == pytest.approx(0.3, abs=0.01)
    assert out.mean() == pytest.approx(1.0, abs=0.01)  # inverted dropout keeps the expectation


def test_bad_rate_names_the_key():
    with pytest.raises(ValueError, match="regularizer.dropout.p"):
        DropoutRegularizer(p=1.0)


@pytest.mark.parametrize("spec, hidden_layers", [(MLP(hidden=[6, 5]), 2), (CNN1D(channels=3), 3)],
                         ids=["mlp", "cnn1d"])
def test_masks_reach_every_hidden_layer_under_vmapped_functional_call(spec, hidden_layers):
    """The trainer's path: per-member masks enter as buffer `<module>.noise` of vmap(functional_call)."""
    torch.manual_seed(0)
    spec_with = DropoutRegularizer(p=0.5).model(copy.deepcopy(spec))  # the trainer hands hooks a copy
    model = spec_with.build((40,), 10).train()
    noisy = noisy_modules(model)
    assert [type(model.get_submodule(n)) for n, _ in noisy] == [Dropout] * hidden_layers
    params = {k: torch.stack([v.detach(), v.detach() * 1.5]) for k, v in model.named_parameters()}  # P=2
    x = torch.randn(8, 40)
    noise = {f"{name}.noise": torch.rand(2, 8, *shape) for name, shape in noisy}
    forward = vmap(lambda p, xs: functional_call(model, p, (xs,)), in_dims=(0, None), randomness="error")
    out = forward({**params, **noise}, x)  # (P, B, K)

    # member by member, by hand: the same layers with each dropout applied explicitly
    for m in range(2):
        h = x
        for name, layer in model.named_children():
            if isinstance(layer, Dropout):
                h = dropout(h, noise[f"{name}.noise"][m], 0.5, training=True)
            else:
                h = functional_call(layer, {k.split(".", 1)[1]: v[m] for k, v in params.items()
                                            if k.split(".", 1)[0] == name}, (h,))
        torch.testing.assert_close(out[m], h)

    all_dropped = {key: torch.zeros_like(value) for key, value in noise.items()}
    assert not torch.allclose(forward({**params, **all_dropped}, x), out)
    model.eval()
    eval_out = forward({**params, **noise}, x)
    torch.testing.assert_close(eval_out, forward(params, x))


@pytest.mark.slow
def test_dropout_end_to_end(make_cfg):
    none = end_to_end(make_cfg, "regularizer=none")
    heavy = end_to_end(make_cfg, "regularizer=[l2,dropout]", "regularizer.l2.strength=0",
                       "regularizer.dropout.p=0.8")
    assert heavy["status"] == "completed" and heavy["technique"] == "dropout+l2"
    # the trainer hands the masks in: heavy dropout fits the (eval-mode) training set less well
    assert heavy["runs"][0]["train_loss"] > none["runs"][0]["train_loss"]
    conv = end_to_end(make_cfg, "regularizer=dropout", "model=cnn1d", "trainer.epochs=1")
    conv_none = end_to_end(make_cfg, "regularizer=none", "model=cnn1d", "trainer.epochs=1")
    assert conv["status"] == "completed" and conv["technique"] == "dropout"
    assert conv["runs"][0]["train_loss"] > conv_none["runs"][0]["train_loss"]


def test_zero_drop_probability_asks_for_no_random_draws():
    assert noisy_modules(torch.nn.Sequential(Dropout((5,), 0.0))) == []
    assert noisy_modules(torch.nn.Sequential(Dropout((5,), 0.3))) == [("0", (5,))]


def test_training_leaves_the_configured_model_as_it_was(make_cfg):
    """Hooks edit the trainer's copy of the spec: a second run builds the model without extra dropout."""
    experiment = Experiment.from_config(make_cfg("regularizer=dropout"))
    data = experiment.dataset.load()
    one_epoch = dataclasses.replace(experiment.trainer, epochs=1)
    first = train_population(experiment.model, data, one_epoch, experiment.regularizers, [0], CPU)
    assert experiment.model.after_activation == []
    second = train_population(experiment.model, data, one_epoch, experiment.regularizers, [0], CPU)
    assert all(torch.equal(first.params[name], second.params[name]) for name in first.params)
