"""A result's identity: config_hash, baseline_hash, labels and job dir names, on the real conf/."""
from __future__ import annotations

import random

import pytest
from omegaconf import OmegaConf

from regbench import identity
from regbench.config import ConfigError
from regbench.settings import build_regularizers


@pytest.fixture
def hash_of(make_cfg):
    return lambda *overrides, smoke=False: identity.config_hash(make_cfg(*overrides, smoke=smoke))


@pytest.mark.parametrize("overrides", [
    ["seed=3"], ["replicates=5"], ["device=cpu"], ["threads=1"], ["progress=false"], ["force=true"],
    ["dataset.data_dir=/elsewhere"], ["trainer.lr=5e-2"], ["trainer.epochs=50"],
    ["regularizer=none", "regularizer.dropout.p=0.5"],          # a knob of a technique not selected
    ["+baseline.trainer.batch_size=10"],                       # what it is compared with, not what it computes
], ids=lambda o: " ".join(o))
def test_what_cannot_change_the_numbers_does_not_change_the_hash(hash_of, overrides):
    assert hash_of(*overrides) == hash_of()


@pytest.mark.parametrize("overrides", [
    ["trainer.epochs=3"], ["trainer.lr=0.1"], ["regularizer=l2"], ["dataset.n_train=500"],
    ["model.hidden=[400,400]"], ["dataset.generator_seed=7"], ["model=cnn1d"], ["+suite=smoke"],
], ids=lambda o: " ".join(o))
def test_what_changes_the_numbers_changes_the_hash(hash_of, overrides):
    assert hash_of(*overrides) != hash_of()


def test_hash_separates_knob_values_and_follows_interpolations(hash_of):
    assert hash_of("regularizer=dropout", "regularizer.dropout.p=0.5") != hash_of("regularizer=dropout")
    # grad_penalty's strength is lr/4: a learning-rate change reaches it through the interpolation
    assert hash_of("regularizer=grad_penalty", "trainer.lr=0.1") != hash_of("regularizer=grad_penalty")
    assert hash_of("regularizer=grad_penalty", "trainer.lr=0.1") == hash_of(
        "regularizer=grad_penalty", "trainer.lr=0.1", "regularizer.grad_penalty.strength=0.025")


def test_hash_does_not_depend_on_key_order_or_int_versus_float(make_cfg, hash_of):
    config = identity.identity_config(make_cfg())
    shuffled = dict(random.Random(0).sample(sorted(config.items()), len(config)))
    shuffled["trainer"] = dict(reversed(list(config["trainer"].items())))
    assert identity.digest(shuffled) == identity.digest(config)
    assert hash_of("trainer.lr=1") == hash_of("trainer.lr=1.0")
    assert len(identity.config_hash(make_cfg())) == 16


def test_baseline_is_the_same_config_without_regularizers(make_cfg, hash_of):
    l2 = make_cfg("regularizer=[l2,dropout]", "trainer.epochs=3", "dataset.n_train=250", smoke=False)
    assert identity.baseline_hash(l2) == hash_of("trainer.epochs=3", "dataset.n_train=250")
    none = make_cfg("trainer.epochs=3")
    assert identity.baseline_hash(none) == identity.config_hash(none)


def test_baseline_values_move_the_baseline_explicitly(make_cfg, hash_of):
    small = make_cfg("trainer.batch_size=10", "+baseline.trainer.batch_size=100", smoke=False)
    assert identity.baseline_hash(small) == hash_of("trainer.batch_size=100")
    assert identity.baseline_hash(small) != identity.config_hash(small)


@pytest.mark.parametrize("bad", ["+baseline.regularizer.l2.strength=1", "+baseline.seed=1",
                                 "+baseline.trainer.nope=1"])
def test_baseline_values_must_name_settings_outside_regularizer(make_cfg, bad):
    with pytest.raises(ConfigError, match=r"^baseline\."):
        identity.baseline_hash(make_cfg(bad))


def test_labels_show_the_resolved_difference_from_conf_defaults(make_cfg):
    smoke = identity.labels(make_cfg("regularizer=l2"))            # +suite=smoke sets these two
    assert smoke == {"dataset": "mnist1d[n_train=500]", "model": "mlp", "setting": "trainer.epochs=3"}
    assert identity.labels(make_cfg(smoke=False)) == {"dataset": "mnist1d", "model": "mlp", "setting": ""}
    knobs = identity.labels(make_cfg("regularizer=[l2,dropout]", "regularizer.dropout.p=0.5",
                                     "model.hidden=[400,400]", "trainer.lr=0.05", "seed=4", smoke=False))
    assert knobs == {"dataset": "mnist1d", "model": "mlp[hidden=[400,400]]",
                     "setting": "regularizer.dropout.p=0.5"}
    # the interpolated strength follows lr: only lr differs from the defaults
    follows = identity.labels(make_cfg("regularizer=grad_penalty", "trainer.lr=0.1", smoke=False))
    assert follows["setting"] == "trainer.lr=0.1"
    # written out, the default value is still the default (a grid's default point), at its own lr only
    written = identity.labels(make_cfg("regularizer=grad_penalty", "regularizer.grad_penalty.strength=0.0125",
                                       smoke=False))
    assert written["setting"] == ""
    elsewhere = identity.labels(make_cfg("regularizer=grad_penalty", "regularizer.grad_penalty.strength=0.0125",
                                         "trainer.lr=0.1", smoke=False))
    assert elsewhere["setting"] == "regularizer.grad_penalty.strength=0.0125 trainer.lr=0.1"


def test_a_technique_is_selected_by_its_own_name(make_cfg):
    cfg = make_cfg("regularizer=none", "regularizer.dropout.p=0.5")
    assert identity.selected_techniques(OmegaConf.to_container(cfg.regularizer)) == ["none"]
    assert [hook.name for hook in build_regularizers(cfg.regularizer)[0]] == ["none"]
    with pytest.raises(ConfigError, match="regularizer.l2.name='l3'"):
        identity.selected_techniques({"l2": {"name": "l3"}})
    with pytest.raises(ConfigError, match="no technique is selected"):
        identity.selected_techniques({"dropout": {"p": 0.2}})


def test_job_dir_names_say_technique_hash_and_seeds(make_cfg):
    cfg = make_cfg("regularizer=[l2,dropout]", "seed=3", "replicates=4")
    assert identity.job_dir_name(cfg) == f"dropout+l2-{identity.config_hash(cfg)[:8]}-s3-6"
    assert identity.job_dir_name(make_cfg("replicates=1")).endswith("-s0")


def test_sweep_subdir_is_the_job_identity(make_cfg):
    cfg = make_cfg("regularizer=l2", hydra=True)
    assert OmegaConf.select(cfg, "hydra.sweep.subdir") == identity.job_dir_name(cfg)
