import math

import pytest
import torch

from regbench.config import ConfigError
from regbench.data.base import Data
from regbench.experiment import Experiment
from regbench.regularizers.early_stopping import EarlyStopping
from regbench.trainer import train_population
from tests.regularizers.helpers import end_to_end

# Validation losses per epoch (rows) for three members: member 0 turns up after epoch 2, member 1 after
# epoch 4, member 2 never (it also dips again after member 0 has stopped, which must not matter to 0).
VAL = torch.tensor([[3.0, 3.0, 3.0],
                    [2.0, 2.0, 2.0],
                    [2.5, 1.0, 1.5],
                    [2.6, 0.5, 1.2],
                    [0.1, 0.6, 1.1],   # member 0 already stopped: its late dip is ignored
                    [0.1, 0.7, 1.0]])


def run_monitor(hook: EarlyStopping, val: torch.Tensor = VAL, every: int = 1):
    """Feed the hook validations after every `every` epochs, whose parameters hold the epoch number;
    return the stop masks of each validation."""
    hook.bind(streams=None, data=type("D", (), {"y_val": torch.ones(3)})())
    masks = []
    for epoch, losses in zip(range(every, every * len(val) + 1, every), val):
        params = {"w": torch.full((3, 2, 2), float(epoch)), "b": torch.full((3, 2), float(epoch))}
        masks.append(hook.epoch_end(epoch, params, {"val_loss": losses}))
    return torch.stack(masks), hook.finalize(params)


def test_each_member_stops_after_patience_and_gets_its_best_weights_back():
    masks, best = run_monitor(EarlyStopping(patience=2))
    # member 0: best at epoch 2, two epochs without improvement -> stops at epoch 4; member 1 at epoch 6
    assert masks.int().T.tolist() == [[0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0]]
    torch.testing.assert_close(best["w"][:, 0, 0], torch.tensor([2.0, 4.0, 6.0]))
    torch.testing.assert_close(best["b"][:, 0], torch.tensor([2.0, 4.0, 6.0]))


def test_patience_counts_epochs_not_validations():
    # validations every 3 epochs (3, 6, ..., 18); patience 5 epochs: member 0 (best at 6) stops at the
    # first validation 5 epochs on, epoch 12 (not after 5 more validations); member 1 (best at 12) at 18
    masks, best = run_monitor(EarlyStopping(patience=5), every=3)
    assert masks.int().T.tolist() == [[0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0]]
    torch.testing.assert_close(best["w"][:, 0, 0], torch.tensor([6.0, 12.0, 18.0]))
    # patience shorter than the spacing: the first validation without an improvement stops it
    masks, _ = run_monitor(EarlyStopping(patience=1), every=3)
    assert masks.int().T.tolist() == [[0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0]]


def test_min_delta_ignores_small_improvements():
    val = torch.tensor([[1.0] * 3, [0.95] * 3, [0.9] * 3, [0.5] * 3])
    masks, best = run_monitor(EarlyStopping(patience=2, min_delta=0.1), val)
    assert masks[2].all() and best["w"][:, 0, 0].tolist() == [1.0, 1.0, 1.0]


def test_nan_validation_loss_never_counts_as_best():
    val = torch.tensor([[1.0] * 3, [math.nan] * 3, [math.nan] * 3])
    masks, best = run_monitor(EarlyStopping(patience=2), val)
    assert masks[2].all() and best["w"][:, 0, 0].tolist() == [1.0, 1.0, 1.0]


def test_never_stopping_reports_the_best_not_the_last_weights():
    val = torch.tensor([[3.0] * 3, [1.0] * 3, [2.0] * 3])
    masks, best = run_monitor(EarlyStopping(patience=5), val)
    assert not masks.any() and best["w"][:, 0, 0].tolist() == [2.0, 2.0, 2.0]


def test_needs_validation_data():
    empty = torch.zeros(0)
    no_val = Data("toy", torch.zeros(4, 2), torch.zeros(4), empty, empty, empty, empty, 2, "tabular")
    with pytest.raises(ConfigError, match="regularizer.early_stopping.*dataset.val_fraction"):
        EarlyStopping().bind(streams=None, data=no_val)


def test_settings_are_validated():
    with pytest.raises(ConfigError, match="regularizer.early_stopping.patience"):
        EarlyStopping(patience=0)
    with pytest.raises(ConfigError, match="regularizer.early_stopping.min_delta"):
        EarlyStopping(min_delta=-1.0)


@pytest.mark.slow
def test_population_members_stop_at_their_own_epochs_with_their_best_weights(make_cfg):
    cfg = make_cfg("regularizer=early_stopping", "regularizer.early_stopping.patience=2",
                   "trainer.epochs=20", "trainer.curve_every=1", "replicates=3")
    experiment = Experiment.from_config(cfg)
    result = train_population(experiment.model, experiment.dataset.load(), experiment.trainer,
                              experiment.regularizers, experiment.seeds, torch.device("cpu"))
    # 500 training examples overfit within a few epochs: every member stops well before 20
    assert (result.epochs < 20).all() and len(set(result.epochs.tolist())) > 1
    for m, seed in enumerate(experiment.seeds):
        curve = torch.tensor([row["val_loss"] for row in result.curves if row["seed"] == seed])
        assert len(curve) == result.epochs[m]  # curves stop with the member
        best = int(curve.argmin())
        assert best == len(curve) - 1 - 2     # stopped `patience` epochs after its best
        # the reported weights are the best epoch's: same validation loss
        torch.testing.assert_close(result.final["val_loss"][m], curve[best], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("eval_every, patience", [(2, 3), (3, 2)])
def test_with_sparse_validation_a_member_stops_at_the_first_validation_patience_epochs_after_its_best(
        make_cfg, eval_every, patience):
    cfg = make_cfg("regularizer=early_stopping", f"regularizer.early_stopping.patience={patience}",
                   "trainer.epochs=30", f"trainer.eval_every={eval_every}", "trainer.curve_every=1", "replicates=3")
    experiment = Experiment.from_config(cfg)
    result = train_population(experiment.model, experiment.dataset.load(), experiment.trainer,
                              experiment.regularizers, experiment.seeds, torch.device("cpu"))
    assert (result.epochs < 30).all()
    for m, seed in enumerate(experiment.seeds):
        val = {row["epoch"]: row["val_loss"] for row in result.curves if row["seed"] == seed}
        validated = [epoch for epoch in val if epoch % eval_every == 0]
        best = min(validated, key=val.get)                        # the monitor sees the validations only
        assert best == int(result.best_epoch[m])
        first_due = next(epoch for epoch in validated if epoch >= best + patience)
        assert int(result.epochs[m]) == first_due, (best, validated)


def test_early_stopping_end_to_end_with_l2(make_cfg):
    record = end_to_end(make_cfg, "regularizer=[l2,early_stopping]", "regularizer.early_stopping.patience=2",
                        "trainer.epochs=20")
    assert record["status"] == "completed" and record["technique"] == "early_stopping+l2"
    # with l2 beside it, each member still stops (500 examples overfit well before 20 epochs), `patience`
    # epochs after its best (validation every epoch)
    for run in record["runs"]:
        assert run["epochs"] < 20 and run["epochs"] - run["best_epoch"] == 2, run
