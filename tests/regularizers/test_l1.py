import pytest
import torch

from regbench.regularizers.l1 import L1, l1_penalty
from tests.regularizers.helpers import end_to_end


def test_zero_strength_adds_nothing():
    params = {"1.weight": torch.randn(2, 3, 4), "1.bias": torch.randn(2, 3)}
    torch.testing.assert_close(L1(strength=0.0).penalty(params, torch.zeros(2)), torch.zeros(2))


def test_penalty_is_strength_times_sum_of_absolute_weights_without_biases():
    params = {"1.weight": torch.tensor([[[1.0, -2.0]], [[0.0, -3.0]]]),  # (P=2, 1, 2)
              "1.bias": torch.tensor([[5.0], [-7.0]])}                     # (P=2, 1) excluded
    torch.testing.assert_close(l1_penalty(params), torch.tensor([3.0, 3.0]))
    torch.testing.assert_close(L1(strength=0.5).penalty(params, torch.zeros(2)), torch.tensor([1.5, 1.5]))


def test_penalty_gradient_is_strength_sign_w():
    w = torch.tensor([[[0.5, -2.0, 3.0]], [[-1.0, 4.0, -0.1]]], requires_grad=True)
    L1(strength=0.1).penalty({"0.weight": w}, torch.zeros(2)).sum().backward()
    torch.testing.assert_close(w.grad, 0.1 * w.detach().sign())


def test_bad_strength_names_the_key():
    with pytest.raises(ValueError, match="regularizer.l1.strength"):
        L1(strength=-1.0)


@pytest.mark.slow
def test_l1_end_to_end_with_l2(make_cfg):
    none = end_to_end(make_cfg, "regularizer=none")
    strong = end_to_end(make_cfg, "regularizer=[l2,l1]", "regularizer.l2.strength=0", "regularizer.l1.strength=0.01")
    assert strong["status"] == "completed" and strong["technique"] == "l1+l2"
    # a strong penalty keeps the network from fitting the training set as well
    assert strong["runs"][0]["train_loss"] > none["runs"][0]["train_loss"]
