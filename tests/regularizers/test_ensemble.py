import pytest
import torch

from regbench.experiment import Experiment
from regbench.trainer.loop import expected_calibration_error, predict
from tests.regularizers.helpers import end_to_end, train


def test_ensemble_prediction_is_the_mean_of_members_probabilities(make_cfg):
    experiment, data, result = train(make_cfg, [0, 1], "regularizer=ensemble", "regularizer.ensemble.members=3")
    assert result.members == 3 and next(iter(result.params.values())).shape[0] == 6
    model = experiment.model.build(data.input_shape, data.num_classes)
    logits = predict(model, result.params, data.x_test)                   # (6, n, K)
    mean_probs = logits.softmax(-1).reshape(2, 3, *logits.shape[1:]).mean(1)  # (2, n, K)
    expected_acc = (mean_probs.argmax(-1) == data.y_test).float().mean(1)
    expected_loss = -mean_probs.gather(-1, data.y_test.expand(2, -1).unsqueeze(-1)).log().mean((1, 2))
    torch.testing.assert_close(result.final["test_acc"], expected_acc)
    torch.testing.assert_close(result.final["test_loss"], expected_loss)
    member_acc = (logits.argmax(-1) == data.y_test).float().mean(1).reshape(2, 3).mean(1)
    torch.testing.assert_close(result.member_final["test_acc"], member_acc)
    # calibration of the ensemble's averaged probabilities, not of its members'
    torch.testing.assert_close(result.final["test_ece"], expected_calibration_error(mean_probs, data.y_test))
    member_ece = expected_calibration_error(logits.softmax(-1), data.y_test).reshape(2, 3).mean(1)
    torch.testing.assert_close(result.member_final["test_ece"], member_ece)


@pytest.mark.slow
def test_member_zero_of_an_ensemble_is_the_plain_model(make_cfg):
    _, _, ens = train(make_cfg, [4], "regularizer=ensemble", "regularizer.ensemble.members=2")
    _, _, alone = train(make_cfg, [4])
    for name, value in alone.params.items():
        torch.testing.assert_close(ens.params[name][0], value[0], rtol=1e-4, atol=1e-5)
        assert not torch.allclose(ens.params[name][1], value[0])


def test_ensemble_end_to_end_reports_ensemble_and_mean_member(make_cfg):
    record = end_to_end(make_cfg, "regularizer=ensemble", "regularizer.ensemble.members=3")
    assert record["technique"] == "ensemble" and len(record["runs"]) == 2
    for run in record["runs"]:
        assert {"member_test_acc", "member_gap_acc", "member_train_loss"} <= set(run)
        assert 0 <= run["test_ece"] <= 1
        assert len(run["member_test_accs"]) == 3
        assert run["member_test_acc"] == pytest.approx(sum(run["member_test_accs"]) / 3)
        # the ensemble's numbers are its averaged probabilities', not its members' mean: by Jensen its
        # cross-entropy is below the members' mean (strictly, as members differ)
        assert run["test_loss"] < run["member_test_loss"] and run["train_loss"] < run["member_train_loss"]


def test_members_must_be_at_least_two(make_cfg):
    from regbench.config import ConfigError
    with pytest.raises(ConfigError, match="regularizer.ensemble.members"):
        Experiment.from_config(make_cfg("regularizer=ensemble", "regularizer.ensemble.members=1"))
