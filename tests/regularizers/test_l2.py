import pytest
import torch

from regbench.regularizers.l2 import L2, l2_penalty
from tests.regularizers.helpers import end_to_end


def test_penalty_is_strength_times_sum_of_squared_weights_without_biases():
    params = {"1.weight": torch.tensor([[[1.0, 2.0]], [[0.0, 3.0]]]),  # (P=2, 1, 2)
              "1.bias": torch.tensor([[5.0], [7.0]])}                     # (P=2, 1) excluded
    torch.testing.assert_close(l2_penalty(params), torch.tensor([5.0, 9.0]))
    torch.testing.assert_close(L2(strength=0.5).penalty(params, torch.zeros(2)), torch.tensor([2.5, 4.5]))


def test_penalty_gradient_is_two_strength_w():
    w = torch.randn(3, 4, 5, requires_grad=True)
    L2(strength=0.1).penalty({"0.weight": w}, torch.zeros(3)).sum().backward()
    torch.testing.assert_close(w.grad, 0.2 * w.detach())


@pytest.mark.slow
def test_zero_strength_is_the_baseline(make_cfg):
    none = end_to_end(make_cfg, "regularizer=none")
    zero = end_to_end(make_cfg, "regularizer=l2", "regularizer.l2.strength=0")
    assert none["runs"][0]["test_loss"] == pytest.approx(zero["runs"][0]["test_loss"], rel=1e-6)


@pytest.mark.slow
def test_l2_end_to_end_shrinks_weights(make_cfg):
    strong = end_to_end(make_cfg, "regularizer=l2", "regularizer.l2.strength=0.1")
    none = end_to_end(make_cfg, "regularizer=none")
    assert strong["status"] == "completed" and strong["technique"] == "l2"
    # a strong penalty keeps the network from fitting the training set as well
    assert strong["runs"][0]["train_loss"] > none["runs"][0]["train_loss"]
