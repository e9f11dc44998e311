"""A result's identity: config_hash, baseline_hash, labels and job dir names, on the real conf/."""
from __future__ import annotations

import json
import random

import pytest
from omegaconf import OmegaConf

from regbench import identity
from regbench.config import ConfigError
from regbench.data import mnist1d
from regbench.regularizers import REGULARIZERS
from regbench.settings import Settings, build_regularizers, selected_techniques


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


@pytest.mark.slow
def test_hash_separates_knob_values_and_follows_interpolations(hash_of):
    assert hash_of("regularizer=dropout", "regularizer.dropout.p=0.5") != hash_of("regularizer=dropout")
    # grad_penalty's strength is lr/4: a learning-rate change reaches it through the interpolation
    assert hash_of("regularizer=grad_penalty", "trainer.lr=0.1") != hash_of("regularizer=grad_penalty")
    assert hash_of("regularizer=grad_penalty", "trainer.lr=0.1") == hash_of(
        "regularizer=grad_penalty", "trainer.lr=0.1", "regularizer.grad_penalty.strength=0.025")


@pytest.mark.slow
def test_hash_does_not_depend_on_key_order_or_int_versus_float(make_cfg, hash_of):
    config = identity.identity_config(make_cfg())
    shuffled = dict(random.Random(0).sample(sorted(config.items()), len(config)))
    shuffled["trainer"] = dict(reversed(list(config["trainer"].items())))
    assert identity.digest(shuffled) == identity.digest(config)
    assert hash_of("trainer.lr=1") == hash_of("trainer.lr=1.0")
    assert len(identity.config_hash(make_cfg())) == 16


@pytest.mark.slow
def test_baseline_is_the_same_config_without_regularizers(make_cfg, hash_of):
    l2 = make_cfg("regularizer=[l2,dropout]", "trainer.epochs=3", "dataset.n_train=250", smoke=False)
    assert identity.baseline_hash(l2) == hash_of("trainer.epochs=3", "dataset.n_train=250")
    none = make_cfg("trainer.epochs=3")
    assert identity.baseline_hash(none) == identity.config_hash(none)


@pytest.mark.slow
def test_baseline_values_move_the_baseline_explicitly(make_cfg, hash_of):
    small = make_cfg("trainer.batch_size=10", "+baseline.trainer.batch_size=100", smoke=False)
    assert identity.baseline_hash(small) == hash_of("trainer.batch_size=100")
    assert identity.baseline_hash(small) != identity.config_hash(small)


@pytest.mark.parametrize("bad", ["+baseline.regularizer.l2.strength=1", "+baseline.seed=1",
                                 "+baseline.trainer.nope=1"])
def test_baseline_values_must_name_settings_outside_regularizer(make_cfg, bad):
    with pytest.raises(ConfigError, match=r"^baseline\."):
        identity.baseline_hash(make_cfg(bad))


@pytest.mark.slow
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
    assert selected_techniques(OmegaConf.to_container(cfg.regularizer)) == ["none"]
    assert [hook.name for hook in build_regularizers(cfg.regularizer)[0]] == ["none"]
    with pytest.raises(ConfigError, match="regularizer.l2.name='l3'"):
        selected_techniques({"l2": {"name": "l3"}})
    with pytest.raises(ConfigError, match="no technique is selected"):
        selected_techniques({"dropout": {"p": 0.2}})


def test_job_dir_names_say_technique_hash_and_seeds(make_cfg):
    cfg = make_cfg("regularizer=[l2,dropout]", "seed=3", "replicates=4")
    assert identity.job_dir_name(cfg) == f"dropout+l2-{identity.config_hash(cfg)[:8]}-s3-6"
    assert identity.job_dir_name(make_cfg("replicates=1")).endswith("-s0")


def test_sweep_subdir_is_the_job_identity(make_cfg):
    cfg = make_cfg("regularizer=l2", hydra=True)
    assert OmegaConf.select(cfg, "hydra.sweep.subdir") == identity.job_dir_name(cfg)


# ---- the identity is built from what the trainer will do (issue 18, point 5) ----

@pytest.mark.slow
@pytest.mark.parametrize("one, other", [
    (["trainer.curve_every=1"], []),                                              # only thins the curves
    (["trainer.steps=100", "trainer.epochs=3"], ["trainer.steps=100", "trainer.epochs=7"]),
    (["trainer.momentum=0.9"], []),                                               # null is 0.9 under SGD
    (["trainer.lr_schedule=none", "trainer.lr_gamma=0.1"], ["trainer.lr_schedule=none"]),
    (["trainer.lr_schedule=cosine", "trainer.lr_step_epochs=3"], ["trainer.lr_schedule=cosine"]),
    (["trainer.batch_size=null"], ["trainer.batch_size=3600"]),                   # MNIST-1D trains on 3600
    (["trainer.batch_size=null"], ["trainer.batch_size=5000"]),
    (["dataset.n_train=null"], ["dataset.n_train=3600"]),
    (["dataset=digits", "dataset.n_train=null"], ["dataset=digits", "dataset.n_train=1294"]),
], ids=lambda o: " ".join(o))
def test_equal_computations_share_one_hash_and_one_label(make_cfg, hash_of, one, other):
    assert hash_of(*one) == hash_of(*other)
    assert identity.labels(make_cfg(*one, smoke=False)) == identity.labels(make_cfg(*other, smoke=False))


@pytest.mark.parametrize("one, other", [
    (["trainer.batch_size=3599"], ["trainer.batch_size=null"]),
    (["dataset.n_train=3599"], ["dataset.n_train=null"]),
    (["trainer.momentum=0.5"], []),
    (["trainer.lr_gamma=0.1"], []),                                               # the step schedule reads it
    (["trainer.steps=100"], ["trainer.steps=101"]),
    (["trainer.eval_every=2"], []),                                               # best_epoch reads it
], ids=lambda o: " ".join(o))
def test_different_computations_keep_different_hashes(hash_of, one, other):
    assert hash_of(*one) != hash_of(*other)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mnist1d", "digits", "breast_cancer", "diabetes"])
def test_the_pool_size_the_identity_assumes_is_what_the_dataset_loads(make_cfg, name):
    """`n_train` = every example is written as null only if pool_size counts what load() gives."""
    settings = Settings.from_config(make_cfg(f"dataset={name}", "dataset.n_train=null", smoke=False))
    assert settings.dataset.pool_size() == len(settings.dataset.load().y_train)


# ---- revisions: results of other code are never reused (issue 18, point 2) ----

@pytest.mark.slow
def test_a_revision_and_the_generator_version_are_part_of_the_identity(make_cfg, hash_of, monkeypatch):
    before = hash_of("regularizer=l2")
    monkeypatch.setattr(REGULARIZERS["l2"], "revision", 2)
    assert hash_of("regularizer=l2") != before
    assert hash_of() == hash_of(), "another technique's revision leaves other results alone"
    none = hash_of()
    monkeypatch.setattr(identity, "CORE_REVISION", identity.CORE_REVISION + 1)
    assert hash_of() != none
    monkeypatch.undo()
    monkeypatch.setattr(mnist1d, "generator_version", lambda: "9.9.9")
    assert hash_of() != none and mnist1d.cache_name(42).startswith("mnist1d-9.9.9_")
    assert identity.identity_config(make_cfg(smoke=False))["dataset"]["source"] == "mnist1d 9.9.9"


@pytest.mark.slow
def test_a_result_of_other_code_is_retrained_and_never_pooled(make_cfg, tmp_path, monkeypatch):
    """A stored result whose code revision differs from this code's is not skipped on a rerun, and the
    leaderboard keeps it in a row of its own; another regbench version with the same revisions is reused."""
    from regbench.app import execute
    from regbench.report.collect import collect

    cfg = make_cfg("regularizer=l2", "trainer.epochs=1")
    first = execute(cfg, tmp_path / "a", [], multirun=True)
    stored = json.loads((tmp_path / "a" / "metrics.json").read_text())
    stored["versions"]["regbench"] = "0.0.1"                     # another release, the same revisions
    (tmp_path / "a" / "metrics.json").write_text(json.dumps(stored))
    assert execute(cfg, tmp_path / "a", [], multirun=True).get("skipped")
    monkeypatch.setattr(REGULARIZERS["l2"], "revision", 2)      # the technique's code changed
    again = execute(make_cfg("regularizer=l2", "trainer.epochs=1"), tmp_path / "a", [], multirun=True)
    assert not again.get("skipped") and again["config_hash"] != first["config_hash"]
    runs = collect([tmp_path]).runs
    assert sorted(runs.groupby("config_hash").size()) == [2, 2]  # two results, never one row of 4 seeds


def test_a_config_that_does_not_validate_gets_a_dir_of_its_own(make_cfg):
    bad = make_cfg("trainer.epochs=0")
    name = identity.job_dir_name(bad)
    assert name.startswith("none-invalid-") and name.endswith("-s0")
    assert name != identity.job_dir_name(make_cfg("trainer.epochs=-1"))


def test_a_required_setting_is_a_label_even_though_its_default_does_not_validate(make_cfg, tmp_path):
    """dataset=file's path has no default (???): putting it back cannot be hashed, so it is a difference."""
    import numpy as np

    path = tmp_path / "data.npz"
    np.savez(path, x=np.zeros((10, 2), dtype=np.float32), y=np.arange(10) % 2)
    assert identity.labels(make_cfg("dataset=file", f"dataset.path={path}", smoke=False))["dataset"] == \
        f"file[path={path}]"
