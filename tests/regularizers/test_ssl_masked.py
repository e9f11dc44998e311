import dataclasses

import pytest
import torch

from regbench.config import ConfigError
from regbench.experiment import Experiment
from regbench.regularizers.pretraining import unlabelled_stage_data
from regbench.regularizers.ssl_masked import (MaskPositions, Reconstruction, mask_inputs, reconstruction_targets,
                                              span_mask)
from regbench.trainer import Streams, train_population
from tests.regularizers.helpers import CPU, assert_fresh_head_on_pretrained_body, end_to_end, pretrained_start

SMALL = ("regularizer=ssl_masked", "regularizer.ssl_masked.pretrain_epochs=1")


@pytest.mark.parametrize("span", [1, 4])
def test_masked_positions_are_zeroed_at_the_requested_rate(span):
    x = torch.randn(2, 500, 40) + 5.0                     # no input value is 0 by chance
    draws = torch.rand(x.shape, generator=torch.Generator().manual_seed(0))
    masked, mask = mask_inputs(x, draws, 0.3, span)
    assert torch.equal(masked == 0, mask.bool())         # exactly the masked positions are zeroed
    assert torch.equal(masked[mask == 0], x[mask == 0])  # the rest untouched
    assert abs(mask.mean().item() - 0.3) < 0.01          # 40 000 positions: the rate within 1 point
    if span == 1:
        assert torch.equal(mask.bool(), draws < 0.3)
    else:                                                # runs: a masked position's neighbour is masked
        neighbours = (mask.roll(1, -1) + mask.roll(-1, -1)) * mask
        assert (neighbours[mask == 1] > 0).all()


def test_span_mask_covers_span_samples_from_each_start():
    draws = torch.ones(1, 1, 10)
    draws[..., 3] = 0.0                                  # one start at position 3
    assert span_mask(draws, 0.2, span=3)[0, 0].tolist() == [0, 0, 0, 1, 1, 1, 0, 0, 0, 0]


def test_loss_counts_only_masked_positions():
    clean = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    mask = torch.tensor([[0.0, 1.0, 0.0, 1.0]])
    outputs = torch.tensor([[100.0, 2.5, -50.0, 3.0]])   # wild errors on unmasked positions
    loss = Reconstruction().loss(outputs, torch.stack([clean, mask], dim=1))
    assert loss.item() == pytest.approx((0.5 ** 2 + 1.0 ** 2) / 2)


def test_mask_hook_draws_per_member_and_targets_the_clean_input(make_cfg):
    data = Experiment.from_config(make_cfg(*SMALL)).dataset.load()
    hook = MaskPositions(fraction=0.5, span=1, target="all")
    hook.bind(Streams([0, 1], CPU), data)
    x = data.x_train[:8].expand(2, 8, 40)
    masked, targets = hook.batch(x, x.flatten(2))
    assert not torch.equal(masked[0], masked[1])         # each member masks its own positions
    assert torch.equal(targets[:, :, 0], x) and torch.equal(targets[:, :, 1], torch.ones_like(x))


def test_pretraining_data_excludes_test_inputs(make_cfg):
    data = Experiment.from_config(make_cfg(*SMALL)).dataset.load()
    stage = unlabelled_stage_data(data, data.unlabelled_pool(), reconstruction_targets)
    assert len(data.x_unlabelled) > 0 and len(stage.x_test) == 0
    assert torch.equal(stage.x_train, torch.cat([data.x_train, data.x_unlabelled]))
    pool = {tuple(row) for row in stage.x_train.tolist()} | {tuple(row) for row in stage.x_val.tolist()}
    assert not pool & {tuple(row) for row in data.x_test.tolist()}


@pytest.mark.slow
def test_fine_tune_starts_from_the_pretrained_body_with_a_fresh_head(make_cfg):
    members = [(0, 0), (1, 0)]
    experiment, data, hook, fresh, started = pretrained_start(make_cfg, SMALL, members)
    assert hook.head == ["5.weight", "5.bias"]
    stage = unlabelled_stage_data(data, data.unlabelled_pool(), reconstruction_targets)
    alone = train_population(experiment.model, stage,
                             dataclasses.replace(experiment.trainer, epochs=1),
                             [MaskPositions(hook.mask_fraction, hook.span, hook.target)], [], CPU,
                             objective=Reconstruction(), population=members)
    assert_fresh_head_on_pretrained_body(started, fresh, hook.head, alone.params)


@pytest.mark.parametrize("knob", ["mask_fraction=0", "span=0", "target=none"])
def test_bad_knobs_are_refused(make_cfg, knob):
    with pytest.raises(ConfigError, match=f"regularizer.ssl_masked.{knob.split('=')[0]}"):
        Experiment.from_config(make_cfg(*SMALL, f"regularizer.ssl_masked.{knob}"))


@pytest.mark.slow
def test_ssl_masked_end_to_end(make_cfg):
    record = end_to_end(make_cfg, *SMALL, "regularizer.ssl_masked.span=4")
    none = end_to_end(make_cfg, "regularizer=none")
    assert record["status"] == "completed" and record["technique"] == "ssl_masked"
    # fine-tuning starts from the pretrained body: from the baseline's init it would be the baseline run bit for bit
    assert record["runs"][0]["test_loss"] != pytest.approx(none["runs"][0]["test_loss"], rel=1e-6)


@pytest.mark.slow
def test_ssl_masked_composes_with_l2(make_cfg):
    record = end_to_end(make_cfg, "regularizer=[l2,ssl_masked]", "regularizer.ssl_masked.pretrain_epochs=1")
    l2 = end_to_end(make_cfg, "regularizer=l2")
    assert record["status"] == "completed" and record["technique"] == "l2+ssl_masked"
    assert record["runs"][0]["test_loss"] != pytest.approx(l2["runs"][0]["test_loss"], rel=1e-6)


@pytest.mark.slow
def test_extra_unlabelled_pool_is_a_fresh_draw_without_test_inputs(make_cfg):
    experiment = Experiment.from_config(make_cfg(*SMALL, "regularizer.ssl_masked.extra_unlabelled=300"))
    data = experiment.dataset.load()
    (hook,) = experiment.regularizers
    hook.bind(Streams([0], CPU), data)
    pool = hook.unlabelled()
    assert len(pool) == len(data.unlabelled_pool()) + 300
    assert torch.equal(pool[: len(data.x_train)], data.x_train)
    rows = {tuple(row) for row in pool.tolist()}
    assert not rows & {tuple(row) for row in data.x_test.tolist()}


def test_extra_pool_refuses_the_targets_own_draw(make_cfg):
    experiment = Experiment.from_config(make_cfg(*SMALL, "regularizer.ssl_masked.extra_unlabelled=10",
                                                 "regularizer.ssl_masked.extra_seed=42"))
    with pytest.raises(ConfigError, match="regularizer.ssl_masked.extra_seed=42 .*dataset.generator_seed=42"):
        experiment.regularizers[0].bind(Streams([0], CPU), experiment.dataset.load())
