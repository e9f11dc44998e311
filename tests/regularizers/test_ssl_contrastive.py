import dataclasses
import math

import pytest
import torch

from regbench.config import ConfigError
from regbench.experiment import Experiment
from regbench.regularizers.pretraining import unlabelled_stage_data
from regbench.regularizers.ssl_contrastive import (no_targets, Contrastive, ProjectionHead, TwoViews, nt_xent,
                                                   self_contrast)
from regbench.trainer.hooks import NotApplicable
from regbench.trainer import Streams, train_population
from tests.regularizers.helpers import (CPU, assert_body_stays_pretrained, assert_fresh_head_on_pretrained_body,
                                        end_to_end, pretrained_start)

SMALL = ("regularizer=ssl_contrastive", "regularizer.ssl_contrastive.pretrain_epochs=1",
         "regularizer.ssl_contrastive.extra_unlabelled=0")   # the default 16000-input pool is slow to draw


def test_nt_xent_matches_a_hand_computation():
    z = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, -1.0]])   # views: 0↔2, 1↔3
    tau = 0.5
    u = z / z.norm(dim=1, keepdim=True)
    s = (u @ u.T).tolist()
    expected = 0.0
    for i, positive in enumerate([2, 3, 0, 1]):
        others = [k for k in range(4) if k != i]
        expected -= math.log(math.exp(s[i][positive] / tau) / sum(math.exp(s[i][k] / tau) for k in others))
    assert nt_xent(z, tau).item() == pytest.approx(expected / 4, rel=1e-6)


def test_nt_xent_is_smallest_when_the_views_coincide():
    g = torch.Generator().manual_seed(0)
    first = torch.randn(16, 8, generator=g)
    same = nt_xent(torch.cat([first, first]), 0.2)
    for scale in (0.1, 0.5, 2.0):
        other = first + scale * torch.randn(16, 8, generator=g)
        assert same < nt_xent(torch.cat([first, other]), 0.2)
    assert same > 0                                          # negatives still share the denominator
    collapsed = torch.ones(5, 3)
    assert self_contrast(collapsed, 0.5).item() == pytest.approx(math.log(5))


def test_views_differ_per_member_and_reproduce_from_the_seed(make_cfg):
    data = Experiment.from_config(make_cfg(*SMALL)).dataset.load()
    x = data.x_train[:6].expand(2, 6, 40)
    y = torch.zeros(2, 6, dtype=torch.int64)

    def views(members):
        hook = TwoViews({"ops": ["shift", "slope", "offset"], "max_shift": 4})
        hook.bind(Streams(members, CPU), data)
        return hook.batch(x, y)

    both, labels = views([0, 1])
    assert both.shape == (2, 12, 40) and labels.shape == (2, 12)
    first, second = both[:, :6], both[:, 6:]
    assert not torch.equal(first, second)                    # two different views of each input
    assert not torch.equal(first, x[:1].expand(2, 6, 40))   # augmented, not the clean input
    assert not torch.equal(both[0], both[1])                 # each member draws its own views
    assert torch.equal(views([0, 1])[0], both)               # same seeds, same views
    assert torch.equal(views([1])[0][0], both[1])            # a member alone sees its own draws


def test_pretraining_data_excludes_test_inputs(make_cfg):
    data = Experiment.from_config(make_cfg(*SMALL)).dataset.load()
    stage = unlabelled_stage_data(data, data.unlabelled_pool(), no_targets)
    assert len(stage.x_test) == 0 and len(stage.y_test) == 0
    assert torch.equal(stage.x_train, torch.cat([data.x_train, data.x_unlabelled]))
    assert torch.equal(stage.x_val, data.x_val)


@pytest.mark.slow
def test_fine_tune_starts_from_the_pretrained_body_with_a_fresh_head(make_cfg):
    members = [(0, 0), (1, 0)]
    experiment, data, hook, fresh, started = pretrained_start(make_cfg, SMALL, members)
    assert hook.head == ["5.weight", "5.bias"] and fresh["5.weight"].shape[1] == 10
    alone = train_population(experiment.model, unlabelled_stage_data(data, data.unlabelled_pool(), no_targets),
                             dataclasses.replace(experiment.trainer, epochs=1, optimizer="adam", lr=1e-3,
                                                 lr_schedule="none"),
                             [TwoViews(hook.views())], [], CPU, objective=Contrastive(0.5, 32), population=members)
    assert alone.params["5.weight"].shape[1] == 32                           # the projection head
    assert_fresh_head_on_pretrained_body(started, fresh, hook.head, alone.params)


@pytest.mark.slow
def test_probe_keeps_the_body_pretrained_even_under_weight_decay(make_cfg):
    assert_body_stays_pretrained(make_cfg, ("regularizer=[ssl_contrastive,weight_decay]", *SMALL[1:],
                                            "regularizer.ssl_contrastive.probe=true",
                                            "regularizer.weight_decay.decay=1"))


def test_an_sgd_momentum_does_not_reach_the_adam_stage(make_cfg):
    """trainer.momentum=0 is an SGD setting: the Adam pretraining stage trains without it."""
    *_, started = pretrained_start(make_cfg, (*SMALL, "trainer.momentum=0.0"), [(0, 0)])
    assert all(torch.isfinite(value).all() for value in started.values())


@pytest.mark.parametrize("knob", ["temperature=0", "projection_dim=0", "probe=maybe", "projection_hidden=-1",
                                  "view_ops=[]", "view_ops=[shear]", "view_ops=shift", "max_slope=-1",
                                  "max_offset=x", "pretrain_lr_schedule=sometimes"])
def test_bad_knobs_are_refused(make_cfg, knob):
    with pytest.raises(ConfigError, match=f"^regularizer.ssl_contrastive.{knob.split('=')[0]}") as raised:
        Experiment.from_config(make_cfg(*SMALL, f"regularizer.ssl_contrastive.{knob}"))
    assert "\n" not in str(raised.value)


def test_views_use_the_listed_ops_at_the_techniques_strengths(make_cfg):
    data = Experiment.from_config(make_cfg(*SMALL)).dataset.load()
    x = torch.zeros(1, 400, 40)                       # a flat signal: shifting it changes nothing
    hook = TwoViews({"ops": ["shift", "slope", "offset"], "max_shift": 3, "max_slope": 2.0, "max_offset": 0.25})
    hook.bind(Streams([0], CPU), data)
    both, _ = hook.batch(x, torch.zeros(1, 400, dtype=torch.int64))
    rise, level = both[..., -1] - both[..., 0], both.mean(-1)
    assert 1.8 < rise.abs().max() <= 2.0 + 1e-5 and 0.2 < level.abs().max() <= 0.25 + 1e-6
    flat = TwoViews({"ops": ["shift"], "max_shift": 3})
    flat.bind(Streams([0], CPU), data)
    assert torch.equal(flat.batch(x, torch.zeros(1, 400, dtype=torch.int64))[0], torch.zeros(1, 800, 40))


@pytest.mark.slow
def test_projection_head_is_pretrained_then_dropped_for_the_fine_tune(make_cfg):
    members = [(0, 0)]
    overrides = (*SMALL, "regularizer.ssl_contrastive.projection_hidden=16")
    experiment, data, hook, fresh, started = pretrained_start(make_cfg, overrides, members)
    spec = hook.stage_spec(experiment.model)
    assert isinstance(spec, ProjectionHead) and spec.body is experiment.model
    stage_model = spec.build(data.input_shape, 32)
    shapes = {name: tuple(p.shape) for name, p in stage_model.named_parameters()}
    # the output layer widened to 16 units, then ReLU and Linear(16, 32): the stage-only head
    assert shapes["5.weight"] == (16, 100) and shapes["7.weight"] == (32, 16)
    assert set(started) == set(fresh) and started["5.weight"].shape == fresh["5.weight"].shape == (1, 10, 100)
    alone = train_population(spec, unlabelled_stage_data(data, data.unlabelled_pool(), no_targets),
                             dataclasses.replace(experiment.trainer, epochs=1, optimizer="adam", lr=1e-3,
                                                 lr_schedule="none"),
                             [TwoViews(hook.views())], [], CPU, objective=Contrastive(0.5, 32), population=members)
    assert set(alone.params) == set(fresh) | {"7.weight", "7.bias"}
    assert_fresh_head_on_pretrained_body(started, fresh, hook.head, alone.params)
    without = Experiment.from_config(make_cfg(*SMALL, "regularizer.ssl_contrastive.projection_hidden=0"))
    assert without.regularizers[0].stage_spec(without.model) is without.model


@pytest.mark.slow
def test_view_ops_of_another_modality_do_not_apply(make_cfg):
    (hook,) = Experiment.from_config(make_cfg(*SMALL, "regularizer.ssl_contrastive.view_ops=[flip]")).regularizers
    data = Experiment.from_config(make_cfg(*SMALL)).dataset.load()
    with pytest.raises(NotApplicable, match="regularizer.ssl_contrastive.view_ops=.*flip not for signal data"):
        hook.bind(Streams([0], CPU), data)


@pytest.mark.slow
def test_ssl_contrastive_end_to_end(make_cfg):
    record = end_to_end(make_cfg, *SMALL)
    none = end_to_end(make_cfg, "regularizer=none")
    assert record["status"] == "completed" and record["technique"] == "ssl_contrastive"
    # fine-tuning starts from the pretrained body: from the baseline's init it would be the baseline run bit for bit
    assert record["runs"][0]["test_loss"] != pytest.approx(none["runs"][0]["test_loss"], rel=1e-6)


@pytest.mark.slow
def test_ssl_contrastive_composes_with_l2(make_cfg):
    record = end_to_end(make_cfg, "regularizer=[l2,ssl_contrastive]", *SMALL[1:])
    l2 = end_to_end(make_cfg, "regularizer=l2")
    assert record["status"] == "completed" and record["technique"] == "l2+ssl_contrastive"
    assert record["runs"][0]["test_loss"] != pytest.approx(l2["runs"][0]["test_loss"], rel=1e-6)


def test_defaults_follow_the_mnist1d_simclr_recipe(make_cfg):
    (hook,) = Experiment.from_config(make_cfg("regularizer=ssl_contrastive", smoke=False)).regularizers
    assert (hook.pretrain_optimizer, hook.pretrain_lr, hook.pretrain_lr_schedule, hook.pretrain_epochs) \
        == ("adam", 1e-3, "none", 50)
    assert (hook.view_ops, hook.max_shift, hook.temperature, hook.extra_unlabelled, hook.projection_hidden) \
        == (["shift", "slope", "offset"], 10, 0.5, 16000, 0)
