"""Expected calibration error on hand-made probabilities (exact answers) and against a plain loop."""
import torch

from regbench.trainer.loop import CLASSIFICATION, expected_calibration_error


def loop_ece(probs: torch.Tensor, targets: torch.Tensor, bins: int = 15) -> float:
    """One predictor's ECE written out bin by bin: Σ_b |B_b|/n · |acc(B_b) − conf(B_b)|."""
    confidence, predicted = probs.max(-1)
    total = 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        inside = (confidence > low) & (confidence <= high) | ((b == 0) & (confidence == 0))
        if inside.any():
            acc = (predicted[inside] == targets[inside]).double().mean()
            conf = confidence[inside].double().mean()
            total += inside.sum().item() / len(targets) * abs(acc - conf).item()
    return total


def test_ece_exact_on_hand_made_probabilities():
    probs = torch.tensor([
        # confidences 0.9, 0.7, 0.62, 0.55 (all class 0) fall in four different bins (width 1/15);
        # with targets 0, 1, 1, 0: right, wrong, wrong, right
        [[0.9, 0.1], [0.7, 0.3], [0.62, 0.38], [0.55, 0.45]],
        # 0.9 (right) and 0.92 (wrong) share bin (13/15, 14/15]: |B|/n · |acc − conf| = 2/4 · |0.5 − 0.91|;
        # 0.3 (class 1, right) and 0.2 (class 1, wrong) are the top-class 0.7 and 0.8 in two more bins
        [[0.9, 0.1], [0.92, 0.08], [0.3, 0.7], [0.2, 0.8]],
    ], dtype=torch.float64)
    targets = torch.tensor([0, 1, 1, 0])
    expected = torch.tensor([(abs(1 - 0.9) + abs(0 - 0.7) + abs(0 - 0.62) + abs(1 - 0.55)) / 4,
                             2 / 4 * abs(0.5 - 0.91) + 1 / 4 * abs(1 - 0.7) + 1 / 4 * abs(0 - 0.8)],
                            dtype=torch.float64)
    torch.testing.assert_close(expected_calibration_error(probs, targets), expected)


def test_perfectly_calibrated_and_always_wrong():
    targets = torch.tensor([0, 0, 0, 1])
    probs = torch.tensor([[[0.75, 0.25]] * 4], dtype=torch.float64)  # 75% sure of class 0, right 3 of 4
    torch.testing.assert_close(expected_calibration_error(probs, targets), torch.zeros(1, dtype=torch.float64))
    wrong = torch.tensor([[[0.0, 1.0]] * 3 + [[1.0, 0.0]]], dtype=torch.float64)  # sure and always wrong
    torch.testing.assert_close(expected_calibration_error(wrong, targets), torch.ones(1, dtype=torch.float64))


def test_vectorized_ece_matches_the_bin_by_bin_loop():
    generator = torch.Generator().manual_seed(0)
    probs = torch.randn(5, 300, 10, generator=generator, dtype=torch.float64).mul(2).softmax(-1)
    targets = torch.randint(0, 10, (300,), generator=generator)
    got = expected_calibration_error(probs, targets)
    torch.testing.assert_close(got, torch.tensor([loop_ece(p, targets) for p in probs], dtype=torch.float64))


def test_classification_calibrates_the_probabilities_behind_logits_or_log_probabilities():
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 3, 50, 4, generator=generator, dtype=torch.float64)   # (R, M, n, K)
    targets = torch.randint(0, 4, (50,), generator=generator)
    averaged = logits.softmax(-1).mean(1)                                         # (R, n, K)
    ensemble = CLASSIFICATION.calibration(CLASSIFICATION.combine(logits), targets)["ece"]
    torch.testing.assert_close(ensemble, expected_calibration_error(averaged, targets))


def test_a_confidence_on_a_bin_edge_belongs_to_the_bin_below():
    # bins are (b/15, (b+1)/15]: 0.6 = 9/15 closes bin (8/15, 9/15], 0.62 opens the next one
    assert 0.6 * 15 == 9.0
    probs = torch.tensor([[[0.6, 0.4], [0.62, 0.38]]], dtype=torch.float64)
    targets = torch.tensor([0, 1])  # the first right, the second wrong
    got = expected_calibration_error(probs, targets)
    torch.testing.assert_close(got, torch.tensor([(abs(1 - 0.6) + abs(0 - 0.62)) / 2], dtype=torch.float64))
