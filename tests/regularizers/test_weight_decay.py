import pytest
import torch

from regbench.regularizers.weight_decay import WeightDecay, decay_weights
from tests.regularizers.helpers import end_to_end


def test_zero_decay_leaves_parameters():
    params = {"1.weight": torch.randn(2, 3, 4), "1.bias": torch.randn(2, 3)}
    before = {k: v.clone() for k, v in params.items()}
    WeightDecay(decay=0.0).after_step(params, lr=0.1)
    for name in params:
        torch.testing.assert_close(params[name], before[name], rtol=0, atol=0)


def test_weights_shrink_by_one_minus_lr_decay_and_biases_stay():
    weight = torch.randn(2, 3, 4, requires_grad=True)
    bias = torch.randn(2, 3, requires_grad=True)
    before_w, before_b = weight.detach().clone(), bias.detach().clone()
    decay_weights({"1.weight": weight, "1.bias": bias}, lr=0.5, decay=0.2)
    torch.testing.assert_close(weight.detach(), 0.9 * before_w)
    torch.testing.assert_close(bias.detach(), before_b, rtol=0, atol=0)


def test_decay_stays_out_of_the_momentum_buffer():
    """Decoupled: the momentum buffer sums only loss gradients, the decay shrinks w after each step."""
    weight = torch.ones(1, 2, 2, requires_grad=True)
    optimizer = torch.optim.SGD([weight], lr=0.1, momentum=0.9)
    hook = WeightDecay(decay=1.0)
    w, buffer = 1.0, 0.0
    for _ in range(3):
        optimizer.zero_grad()
        (0.5 * weight).sum().backward()                  # constant loss gradient 0.5
        optimizer.step()
        hook.after_step({"0.weight": weight}, lr=0.1)
        buffer = 0.9 * buffer + 0.5                      # by hand: the buffer never sees the decay
        w = (w - 0.1 * buffer) * (1 - 0.1 * 1.0)
    torch.testing.assert_close(weight.detach(), torch.full((1, 2, 2), w))
    coupled = 1.0                                        # an L2 gradient in the buffer gives another w
    buffer = 0.0
    for _ in range(3):
        buffer = 0.9 * buffer + 0.5 + 1.0 * coupled
        coupled -= 0.1 * buffer
    assert abs(coupled - w) > 1e-3


def test_bad_decay_names_the_key():
    with pytest.raises(ValueError, match="regularizer.weight_decay.decay"):
        WeightDecay(decay=-0.1)


@pytest.mark.slow
def test_weight_decay_end_to_end_with_adamw_and_l2(make_cfg):
    plain = end_to_end(make_cfg, "regularizer=none", "trainer.optimizer=adamw", "trainer.lr=0.01")
    strong = end_to_end(make_cfg, "regularizer=[l2,weight_decay]", "regularizer.l2.strength=0",
                        "regularizer.weight_decay.decay=5", "trainer.optimizer=adamw", "trainer.lr=0.01")
    assert strong["status"] == "completed" and strong["technique"] == "l2+weight_decay"
    assert strong["runs"][0]["train_loss"] > plain["runs"][0]["train_loss"]
