import pytest
import torch

from regbench.regularizers.bagging import Bagging
from regbench.trainer import Streams, TrainSet
from tests.regularizers.helpers import end_to_end, train


def resample(seeds, N=500):
    bagging = Bagging(members=3)
    bagging.bind(Streams([(s, m) for s in seeds for m in range(3)], torch.device("cpu")), data=None)
    y = torch.arange(N) % 10
    train = TrainSet(index=torch.arange(N).expand(len(seeds) * 3, N), labels=y.expand(len(seeds) * 3, N))
    return bagging.prepare(train), y


def test_each_member_resamples_the_training_set_with_replacement():
    train, y = resample([0])
    N = train.index.shape[1]
    assert train.index.shape == (3, N)                         # the training set's size
    for member in train.index:
        assert member.unique().numel() < N                     # with replacement: repeats
        # about 1 - 1/e of the rows appear in a bootstrap sample
        assert abs(member.unique().numel() / N - 0.632) < 0.06
    assert not torch.equal(train.index[0], train.index[1])     # members differ
    assert torch.equal(train.labels, y[train.index])           # labels follow their rows


def test_resamples_depend_only_on_the_member():
    together, _ = resample([0, 1])
    alone, _ = resample([1])
    assert torch.equal(together.index[3:], alone.index)


@pytest.mark.slow
def test_members_train_on_their_resamples(make_cfg):
    """Bagging and a plain ensemble share inits, data orders and draws: only the bootstrap differs."""
    *_, bagged = train(make_cfg, [0], "regularizer=bagging", "regularizer.bagging.members=2")
    *_, plain = train(make_cfg, [0], "regularizer=ensemble", "regularizer.ensemble.members=2")
    for name in plain.params:
        assert not torch.equal(bagged.params[name], plain.params[name]), name
    assert not torch.equal(bagged.member_final["train_loss"], plain.member_final["train_loss"])


@pytest.mark.slow
def test_bagging_end_to_end(make_cfg):
    record = end_to_end(make_cfg, "regularizer=bagging", "regularizer.bagging.members=2")
    plain = end_to_end(make_cfg, "regularizer=ensemble", "regularizer.ensemble.members=2")
    assert record["status"] == "completed" and "member_test_acc" in record["runs"][0]
    # each member sees about 63% of the rows, so it fits the whole training set less well than a plain
    # ensemble's member (which, without the resamples, it would be bit for bit)
    assert record["runs"][0]["member_train_loss"] > plain["runs"][0]["member_train_loss"]
