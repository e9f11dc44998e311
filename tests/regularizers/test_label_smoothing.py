import pytest
import torch

from regbench.config import ConfigError
from regbench.regularizers.label_smoothing import LabelSmoothing, smooth_targets
from regbench.regularizers.mixup import Mixup
from tests.regularizers.helpers import bind_toy, end_to_end


def test_zero_smoothing_is_the_identity():
    targets = torch.softmax(torch.randn(2, 5, 4), -1)
    assert torch.equal(smooth_targets(targets, 0.0), targets)
    x, y = torch.randn(2, 5, 3), torch.randint(0, 4, (2, 5))
    x_out, y_out = bind_toy(LabelSmoothing(smoothing=0.0), num_classes=4).batch(x, y)
    assert x_out is x and y_out is y


def test_hard_labels_become_smoothed_one_hot():
    x, y = torch.randn(1, 2, 3), torch.tensor([[2, 0]])                      # (P=1, B=2), K=4
    x_out, targets = bind_toy(LabelSmoothing(smoothing=0.2), num_classes=4).batch(x, y)
    assert x_out is x and targets.shape == (1, 2, 4)
    torch.testing.assert_close(targets, torch.tensor([[[0.05, 0.05, 0.85, 0.05],
                                                        [0.85, 0.05, 0.05, 0.05]]]))
    torch.testing.assert_close(targets.sum(-1), torch.ones(1, 2))


def test_soft_targets_are_smoothed_the_same_way():
    soft = torch.tensor([[[0.7, 0.3, 0.0, 0.0]]])                             # a mixup target
    _, targets = bind_toy(LabelSmoothing(smoothing=0.2), num_classes=4).batch(torch.randn(1, 1, 3), soft)
    torch.testing.assert_close(targets, torch.tensor([[[0.61, 0.29, 0.05, 0.05]]]))


def test_runs_after_mixup_and_commutes_with_it():
    assert LabelSmoothing.order > Mixup.order
    x, y = torch.randn(2, 6, 3), torch.randint(0, 4, (2, 6))
    smooth = bind_toy(LabelSmoothing(smoothing=0.3), num_classes=4)
    _, mixed_then_smoothed = smooth.batch(*bind_toy(Mixup(alpha=0.4), num_classes=4).batch(x, y))
    # smoothing is affine, so it equals mixing the smoothed one-hot targets
    _, smoothed = smooth.batch(x, y)
    _, mixed_smoothed = bind_toy(Mixup(alpha=0.4), num_classes=4).batch(x, smoothed)
    torch.testing.assert_close(mixed_then_smoothed, mixed_smoothed)


def test_rejects_smoothing_above_one():
    with pytest.raises(ConfigError, match="regularizer.label_smoothing.smoothing"):
        LabelSmoothing(smoothing=1.5)


@pytest.mark.slow
def test_label_smoothing_end_to_end_with_mixup_and_l2(make_cfg):
    none = end_to_end(make_cfg, "regularizer=none")
    alone = end_to_end(make_cfg, "regularizer=label_smoothing", "regularizer.label_smoothing.smoothing=0.5")
    composed = end_to_end(make_cfg, "regularizer=[l2,mixup,label_smoothing]")
    assert alone["status"] == "completed" and alone["technique"] == "label_smoothing"
    # the soft targets reach the loss: the model is pulled towards uniform, so its hard-label loss rises
    assert alone["runs"][0]["train_loss"] > none["runs"][0]["train_loss"]
    assert composed["status"] == "completed" and composed["technique"] == "l2+label_smoothing+mixup"
