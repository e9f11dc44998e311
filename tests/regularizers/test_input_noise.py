import pytest
import torch

from regbench.regularizers.input_noise import InputNoise, add_input_noise
from tests.regularizers.helpers import bind_toy, end_to_end


def bound(std: float, seeds=(0, 1)) -> InputNoise:
    return bind_toy(InputNoise(std=std), seeds)


def test_zero_std_is_identity():
    x, y = torch.randn(2, 5, 40), torch.randint(10, (2, 5))
    x_out, y_out = bound(0.0).batch(x, y)
    torch.testing.assert_close(x_out, x, rtol=0, atol=0)
    assert y_out is y


def test_noise_is_std_times_the_normal_draw():
    x, normal = torch.randn(3, 4), torch.randn(3, 4)
    torch.testing.assert_close(add_input_noise(x, normal, 0.5), x + 0.5 * normal)


def test_noise_has_the_requested_std_and_differs_per_member_and_step():
    hook = bound(0.3)
    x = torch.zeros(2, 2000, 40)  # (P, B, L)
    first, _ = hook.batch(x, torch.zeros(2, 2000, dtype=torch.long))
    second, _ = hook.batch(x, torch.zeros(2, 2000, dtype=torch.long))
    assert first.mean().abs() < 0.01
    assert first.std() == pytest.approx(0.3, rel=0.02)
    assert not torch.equal(first[0], first[1]) and not torch.equal(first, second)
    # a member's draws depend on its own seed only, not on who else is in the population
    alone, _ = bound(0.3, seeds=(1,)).batch(x[1:], torch.zeros(1, 2000, dtype=torch.long))
    torch.testing.assert_close(alone[0], first[1])


def test_bad_std_names_the_key():
    with pytest.raises(ValueError, match="regularizer.input_noise.std"):
        InputNoise(std=-0.1)


@pytest.mark.slow
def test_input_noise_end_to_end_with_l2(make_cfg):
    none = end_to_end(make_cfg, "regularizer=none")
    noisy = end_to_end(make_cfg, "regularizer=[l2,input_noise]", "regularizer.l2.strength=0",
                       "regularizer.input_noise.std=1.0")
    assert noisy["status"] == "completed" and noisy["technique"] == "input_noise+l2"
    # evaluation sees clean inputs, but training on noisy ones fits the clean training set less well
    assert noisy["runs"][0]["train_loss"] > none["runs"][0]["train_loss"]
