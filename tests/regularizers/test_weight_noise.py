import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call, vmap

from regbench.data.base import Data
from regbench.models.mlp import MLP
from regbench.regularizers.weight_noise import WeightNoise, perturb_weights
from regbench.trainer import Streams, TrainerSettings, train_population
from regbench.trainer.loop import build_population
from tests.regularizers.helpers import end_to_end


def test_zero_std_is_the_identity():
    params = {"1.weight": torch.randn(2, 3, 4), "1.bias": torch.randn(2, 3)}
    noise = {"1.weight": torch.randn(2, 3, 4)}
    out = perturb_weights(params, noise, 0.0)
    assert all(torch.equal(out[name], params[name]) for name in params)
    hook = WeightNoise(std=0.0)
    hook.bind(Streams([0, 1], torch.device("cpu")), data=None)
    assert hook.forward_params(params) is params


def test_weights_get_member_specific_noise_and_biases_stay_clean():
    params = {"1.weight": torch.zeros(2, 300, 400), "1.bias": torch.zeros(2, 300)}
    hook = WeightNoise(std=0.5)
    hook.bind(Streams([0, 1], torch.device("cpu")), data=None)
    used = hook.forward_params(params)
    assert torch.equal(used["1.bias"], params["1.bias"])
    assert used["1.weight"].std().item() == pytest.approx(0.5, rel=0.01)
    assert not torch.equal(used["1.weight"][0], used["1.weight"][1])
    again = hook.forward_params(params)  # fresh noise each step
    assert not torch.equal(used["1.weight"], again["1.weight"])


def tiny_data() -> Data:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 6, generator=g), torch.randint(0, 3, (64,), generator=g)
    return Data(name="tiny", x_train=x, y_train=y, x_val=x[:8], y_val=y[:8], x_test=x[:8], y_test=y[:8],
                num_classes=3, modality="tabular")


def test_one_step_updates_clean_weights_with_the_gradient_at_the_perturbed_point():
    data, seeds, std, lr = tiny_data(), [0, 1], 0.3, 0.5
    spec = MLP(hidden=[5])
    settings = TrainerSettings(epochs=1, batch_size=None, lr=lr, momentum=0.0, lr_schedule="none")
    result = train_population(spec, data, settings, [WeightNoise(std=std)], seeds, torch.device("cpu"))

    # The same step by hand: noise from the same per-member streams, gradient at w + std*noise.
    model, clean = build_population(spec, data, seeds, torch.device("cpu"))
    streams = Streams(seeds, torch.device("cpu"))
    noise = {name: streams.normal(f"weight_noise:{name}", tuple(v.shape[1:]))
             for name, v in clean.items() if name.endswith("weight")}

    def step_from(point: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        point = {k: v.detach().requires_grad_() for k, v in point.items()}
        logits = vmap(lambda p: functional_call(model, p, (data.x_train,)))(point)   # (P, N, K)
        losses = F.cross_entropy(logits.transpose(1, 2), data.y_train.expand(len(seeds), -1),
                                 reduction="none").mean(1)
        grads = torch.autograd.grad(losses.sum(), list(point.values()))
        return dict(zip(point, grads))

    perturbed = perturb_weights(clean, noise, std)
    grad_noisy, grad_clean = step_from(perturbed), step_from(clean)
    for name in clean:
        expected = clean[name].detach() - lr * grad_noisy[name]
        torch.testing.assert_close(result.params[name], expected, rtol=1e-5, atol=1e-6)
    # ...and it is neither the noiseless step nor the step applied to the perturbed weights
    weight = "1.weight"
    for wrong in (clean[weight] - lr * grad_clean[weight], perturbed[weight] - lr * grad_noisy[weight]):
        assert (result.params[weight] - wrong.detach()).abs().max() > 1e-2


@pytest.mark.slow
def test_weight_noise_end_to_end_and_with_l2(make_cfg):
    noisy = end_to_end(make_cfg, "regularizer=weight_noise", "regularizer.weight_noise.std=0.05")
    both = end_to_end(make_cfg, "regularizer=[l2,weight_noise]")
    assert noisy["status"] == "completed" and noisy["technique"] == "weight_noise"
    assert both["status"] == "completed" and both["technique"] == "l2+weight_noise"
    # the gradient taken at noisy weights fits the (clean) training set less well than without noise
    none, l2 = end_to_end(make_cfg, "regularizer=none"), end_to_end(make_cfg, "regularizer=l2")
    assert noisy["runs"][0]["train_loss"] > none["runs"][0]["train_loss"]
    assert both["runs"][0]["train_loss"] > l2["runs"][0]["train_loss"]
