import numpy as np
import pytest
import scipy.stats
import torch

from regbench.regularizers.mixup import PROPOSALS, Mixup, beta_sample, log_gamma_sample, mixup
from tests.regularizers.helpers import bind_toy, end_to_end


def test_lambda_one_and_alpha_zero_are_the_identity():
    x, targets = torch.randn(2, 5, 4), torch.softmax(torch.randn(2, 5, 3), -1)
    partner = torch.stack([torch.randperm(5), torch.randperm(5)])
    mixed_x, mixed_y = mixup(x, targets, torch.ones(2, 5), partner)
    assert torch.equal(mixed_x, x) and torch.equal(mixed_y, targets)
    y = torch.randint(0, 3, (2, 5))
    x_out, y_out = bind_toy(Mixup(alpha=0.0)).batch(x, y)
    assert x_out is x and y_out is y


def test_mixes_each_example_with_its_partner_by_its_own_lambda():
    x = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [4.0, 4.0]]])                 # (P=1, B=3, 2)
    targets = torch.eye(3)[None]                                              # example i has class i
    lam, partner = torch.tensor([[0.25, 1.0, 0.5]]), torch.tensor([[1, 0, 0]])
    mixed_x, mixed_y = mixup(x, targets, lam, partner)
    torch.testing.assert_close(mixed_x, torch.tensor([[[0.25, 1.5], [0.0, 2.0], [2.5, 2.0]]]))
    torch.testing.assert_close(mixed_y, torch.tensor([[[0.25, 0.75, 0.0], [0.0, 1.0, 0.0], [0.5, 0.0, 0.5]]]))


def test_hook_mixes_inputs_and_labels_consistently_per_member():
    # inputs encode their own class, so a mixed input must carry exactly its mixed label
    y = torch.randint(0, 3, (2, 200))
    x = torch.eye(3)[y]                                                       # (P, B, 3) one-hot inputs
    mixed_x, mixed_y = bind_toy(Mixup(alpha=0.4)).batch(x, y)
    torch.testing.assert_close(mixed_x, mixed_y)
    torch.testing.assert_close(mixed_y.sum(-1), torch.ones(2, 200))
    assert not torch.equal(mixed_x, x) and not torch.equal(mixed_x[0], mixed_x[1])
    # images keep their shape
    images = torch.randn(2, 10, 1, 4, 4)
    assert bind_toy(Mixup(alpha=0.4)).batch(images, y[:, :10])[0].shape == images.shape


@pytest.mark.parametrize("alpha", [0.2, 1.0, 3.0])
def test_gamma_and_beta_draws_follow_their_distributions(alpha):
    g = torch.Generator().manual_seed(1)
    n = 20000
    normal = torch.randn(n, 2, PROPOSALS, generator=g, dtype=torch.float64)
    uniform = torch.rand(n, 2, PROPOSALS, generator=g, dtype=torch.float64)
    boost = torch.rand(n, 2, generator=g, dtype=torch.float64)
    log_g = log_gamma_sample(alpha, normal, uniform, boost)[:, 0].numpy()
    assert scipy.stats.kstest(log_g, lambda t: scipy.stats.gamma(alpha).cdf(np.exp(t))).pvalue > 1e-3
    lam = beta_sample(alpha, normal, uniform, boost).numpy()
    assert scipy.stats.kstest(lam, scipy.stats.beta(alpha, alpha).cdf).pvalue > 1e-3
    assert lam.var() == pytest.approx(1 / (4 * (2 * alpha + 1)), rel=0.05)


def test_member_draws_do_not_depend_on_the_population():
    y = torch.randint(0, 3, (1, 50))
    x = torch.randn(1, 50, 4)
    together = bind_toy(Mixup(alpha=0.4), seeds=(7, 8)).batch(x.expand(2, -1, -1), y.expand(2, -1))
    alone = bind_toy(Mixup(alpha=0.4), seeds=(8,)).batch(x, y)
    torch.testing.assert_close(together[0][1:], alone[0])
    torch.testing.assert_close(together[1][1:], alone[1])


@pytest.mark.slow
def test_mixup_end_to_end_and_with_l2(make_cfg):
    none, l2 = end_to_end(make_cfg, "regularizer=none"), end_to_end(make_cfg, "regularizer=l2")
    alone = end_to_end(make_cfg, "regularizer=mixup")
    composed = end_to_end(make_cfg, "regularizer=[l2,mixup]")
    assert alone["status"] == "completed" and alone["technique"] == "mixup"
    assert composed["status"] == "completed" and composed["technique"] == "l2+mixup"
    # the mixed batches reach the loss: the clean training set is fitted less well than without them
    # (mixup draws from its own streams: without its batches each run would be its baseline's bit for bit)
    assert alone["runs"][0]["train_loss"] > none["runs"][0]["train_loss"]
    assert composed["runs"][0]["train_loss"] > l2["runs"][0]["train_loss"]
