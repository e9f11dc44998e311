"""Revisions are bumped when results change: a tiny reference run per component, checked against its
numbers stored in tests/revisions.json with the revisions they were made under.

A stored result is reused (and pooled with others) while its identity matches, and the identity holds the
code's revisions, not its version (regbench.identity): `identity.CORE_REVISION` for the trainer loop,
the metrics and the splits, and each dataset's, model's and technique's `revision` class attribute.
Whoever changes what a config computes bumps the revision of what they changed. These tests enforce it:
each component (the core, every technique, every model, every built-in dataset that needs no files)
trains one seed for 2 epochs on 100 examples, and its final numbers must equal the stored ones while its
revisions do. A run whose numbers moved names the revision to bump (or the regression to fix); a run
whose revisions moved asks for the file to be regenerated:

    python -m tests.test_revisions --update        # entries whose revisions or config changed, new ones
    python -m tests.test_revisions --update --all  # every entry (see below)

`--update` leaves an entry whose revisions are unchanged as it is, and fails if that entry's numbers
moved: regenerating never hides a change that needed a bump.

The numbers are float32 CPU results with one torch thread: they are specific to a kind of machine and a
torch build (rounding), within the tolerance below. If a torch upgrade or another kind of machine moves
them and no code changed, no revision should be bumped (the identity holds no torch version): regenerate
every entry with `--all`.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Callable

import pytest
import torch

from regbench.data import DATASETS
from regbench.experiment import Experiment
from regbench.models import MODELS
from regbench.regularizers import REGULARIZERS

REFERENCE = Path(__file__).with_name("revisions.json")
REGENERATE = "regenerate tests/revisions.json: python -m tests.test_revisions --update"
TOLERANCE = {"rel": 1e-4, "abs": 1e-6}
# A reference run must move its numbers away from the core's by more than this (relative), else it would
# not notice a change of its component (a technique too weak at its default strength over 4 steps).
EXERCISED = 1e-3
METRICS = ("train_loss", "val_loss", "test_loss", "test_acc", "epochs", "best_epoch")
# Over +suite=smoke: 4 steps of 50 examples (so the data order counts), the lr halved after epoch 1
# (the step schedule counts), on the CPU with one thread (threads=1 sets torch's threads for the run).
SMALL = ("trainer.epochs=2", "trainer.batch_size=50", "trainer.lr_step_epochs=1", "dataset.n_train=100",
         "replicates=1", "seed=0", "device=cpu", "threads=1")
FILE_BASED = ("file", "mnist", "fashion_mnist", "cifar10")   # read files the tests do not have
MODEL_DATASETS = {"cnn2d": "digits", "resnet": "digits", "shallow": "toy1d"}   # else mnist1d
# Each technique's run, its knobs set so that it acts within 4 steps (and pretraining stays tiny).
TECHNIQUE_KNOBS = {
    "bagging": ("regularizer.bagging.members=2",),
    "ensemble": ("regularizer.ensemble.members=2",),
    # min_delta larger than any loss: epoch 1 is the best, the member stops at epoch 2 with epoch 1's weights
    "early_stopping": ("trainer.epochs=3", "regularizer.early_stopping.patience=1",
                       "regularizer.early_stopping.min_delta=100"),
    "l1": ("regularizer.l1.strength=0.01",),
    "l2": ("regularizer.l2.strength=0.03",),
    "weight_decay": ("regularizer.weight_decay.decay=1.0",),
    "ssl_contrastive": ("regularizer.ssl_contrastive.pretrain_epochs=1",
                        "regularizer.ssl_contrastive.extra_unlabelled=200"),
    "ssl_masked": ("regularizer.ssl_masked.pretrain_epochs=1",),
    "transfer": ("regularizer.transfer.pretrain_epochs=1", "regularizer.transfer.source_samples=500"),
}


def components() -> dict[str, tuple[str, ...]]:
    """Component -> its run's overrides. `core` is the default MLP on MNIST-1D with `none`, which is
    also the run of the mlp model, the mnist1d dataset and the none technique; datasets train the MLP."""
    runs = {"core": ()}
    for name in sorted(REGULARIZERS):
        if name != "none":
            runs[f"regularizer.{name}"] = (f"regularizer={name}", *TECHNIQUE_KNOBS.get(name, ()))
    for name in sorted(MODELS):
        if name != "mlp":
            runs[f"model.{name}"] = (f"dataset={MODEL_DATASETS.get(name, 'mnist1d')}", f"model={name}")
    for name in sorted(DATASETS):
        if name != "mnist1d" and name not in FILE_BASED:
            runs[f"dataset.{name}"] = (f"dataset={name}", "model=mlp")
    return runs


def regenerate(why: str) -> str:
    return f"{why}: {REGENERATE}"


def made_with(experiment: Experiment) -> dict[str, str]:
    """What else the numbers depend on: the torch build, the kind of machine, the data generator's version
    (the last is in the run's identity, so a new one needs no revision either)."""
    source = experiment.identity["dataset"].get("source")
    return {"torch": torch.__version__, "machine": platform.machine(), **({"data": source} if source else {})}


def attribute(owner: type) -> str:
    return f"{owner.__module__}.{owner.__qualname__}.revision"


def revision_attributes(experiment: Experiment) -> dict[str, str]:
    """The run's revisions (as in its identity) -> the attribute that holds each."""
    return {"core": "regbench.identity.CORE_REVISION", "dataset": attribute(type(experiment.dataset)),
            "model": attribute(type(experiment.model)),
            **{f"regularizer.{hook.name}": attribute(type(hook)) for hook in experiment.regularizers}}


def reference_run(make: Callable, overrides: tuple[str, ...]) -> tuple[Experiment, dict]:
    """Train the component's run; return the experiment and {"overrides", "revisions", "metrics"}."""
    experiment = Experiment.from_config(make(*SMALL, *overrides))
    threads = torch.get_num_threads()
    try:
        (point,) = experiment.run()
    finally:
        torch.set_num_threads(threads)   # the run set 1: leave later tests as they were
    (row,) = point.runs
    return experiment, {"overrides": list(overrides), "revisions": experiment.identity["revisions"],
                        "metrics": {key: row[key] for key in METRICS if row.get(key) is not None},
                        "made_with": made_with(experiment)}


def moved(stored: dict, now: dict) -> dict[str, tuple[float, float]]:
    """Metrics that differ beyond TOLERANCE (or appear on one side only) -> (stored, now)."""
    keys = stored.keys() | now.keys()
    return {key: (stored.get(key), now.get(key)) for key in sorted(keys)
            if key not in stored or key not in now or now[key] != pytest.approx(stored[key], **TOLERANCE)}


def verdict(component: str, stored: dict | None, experiment: Experiment, now: dict) -> str | None:
    """None where `now` agrees with `stored`, else what to do about it."""
    if stored is None:
        return regenerate(f"{component} has no reference numbers")
    if stored["overrides"] != now["overrides"]:
        return regenerate(f"{component}'s reference run changed from {stored['overrides']} to {now['overrides']}")
    if stored["revisions"] != now["revisions"]:
        return regenerate(f"{component}'s revisions changed from {stored['revisions']} to {now['revisions']}")
    changes = moved(stored["metrics"], now["metrics"])
    if not changes:
        return None
    attributes = revision_attributes(experiment)
    if component == "core":   # also the run of MNIST-1D, the MLP and `none`
        advice = f"bump the revision of what you changed: {', '.join(attributes.values())}"
    else:
        own = attributes[component if component.startswith("regularizer.") else component.split(".")[0]]
        shared = [value for value in attributes.values() if value != own]
        advice = (f"bump {own} (if the change is in a part this run shares with others, whose runs moved too, "
                  f"bump that part's instead: {', '.join(shared)})")
    lines = [f"{component}: the numbers of its reference run moved while its revisions {now['revisions']} did not:",
             *(f"  {key}: {old} -> {new}" for key, (old, new) in changes.items()),
             f"If your change meant to change results, {advice}, so that stored results of the older code are "
             "never reused (CORE_REVISION: the trainer loop, the metrics, the data splits). If it did not, fix "
             "the regression.",
             f"Then {REGENERATE}"]
    if stored.get("made_with") != now["made_with"]:
        lines.append(f"(These numbers were made with {stored.get('made_with')}, this is {now['made_with']}: if no "
                     "code of regbench changed, only rounding or the data did: regenerate every entry with "
                     "--update --all, no revision to bump.)")
    return "\n".join(lines)


def stored_file() -> dict:
    return json.loads(REFERENCE.read_text()) if REFERENCE.exists() else {"components": {}}


@pytest.mark.slow
@pytest.mark.parametrize("component", list(components()))
def test_numbers_move_only_with_a_revision(make_cfg, component):
    experiment, now = reference_run(make_cfg, components()[component])
    problem = verdict(component, stored_file()["components"].get(component), experiment, now)
    if problem:
        pytest.fail(problem, pytrace=False)


def test_every_stored_reference_is_a_component():
    gone = sorted(stored_file()["components"].keys() - components().keys())
    assert not gone, regenerate(f"tests/revisions.json holds components that no longer exist: {gone}")


def test_each_reference_run_moves_its_numbers_away_from_the_core():
    """A run whose numbers equal the core's would not notice its component changing."""
    stored = stored_file()["components"]
    core = stored["core"]["metrics"]
    weak = [component for component, entry in stored.items() if component != "core" and all(
        abs(entry["metrics"].get(key, 0) - value) <= EXERCISED * abs(value) for key, value in core.items())]
    assert not weak, f"these reference runs do not exercise their component (strengthen its knobs): {weak}"


def update(everything: bool) -> int:
    """Rewrite tests/revisions.json; return the exit status (1: numbers moved under the same revisions)."""
    from tests.conftest import make_cfg
    file = stored_file()
    entries, refused = {}, []
    # a fresh data cache, as the tests have (conftest's data_dir), unless REGBENCH_DATA_DIR names one
    with tempfile.TemporaryDirectory(prefix="regbench-revisions-") as data_dir, \
            contextlib.contextmanager(make_cfg.__wrapped__)() as make:
        os.environ.setdefault("REGBENCH_DATA_DIR", data_dir)
        for component, overrides in components().items():
            experiment, now = reference_run(make, overrides)
            stored = file["components"].get(component)
            stale = stored is None or (stored["overrides"], stored["revisions"]) != (now["overrides"], now["revisions"])
            problem = verdict(component, stored, experiment, now)
            if everything or stale:
                entries[component] = now
            else:
                entries[component] = stored
                if problem:
                    refused.append(problem)
            print(f"{component}: {'written' if entries[component] is now else 'kept'}", file=sys.stderr)
    about = ("tests/test_revisions.py: each component's reference numbers and the revisions they were made "
             "under; regenerate with python -m tests.test_revisions --update")
    REFERENCE.write_text(json.dumps({"about": about, "components": entries}, indent=2, sort_keys=True) + "\n")
    for problem in refused:
        print(f"\nkept as it was: {problem}", file=sys.stderr)
    return 1 if refused else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tests.test_revisions", description=__doc__.split("\n")[0])
    parser.add_argument("--update", action="store_true", required=True,
                        help="rewrite the entries whose revisions or run changed, and add new components")
    parser.add_argument("--all", action="store_true",
                        help="rewrite every entry (a torch upgrade or another kind of machine moved the numbers)")
    arguments = parser.parse_args()
    sys.exit(update(arguments.all))
