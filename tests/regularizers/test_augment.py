import math

import pytest
import torch

from regbench.config import ConfigError
from regbench.data.base import Data
from regbench.trainer.streams import Streams
from regbench.trainer.hooks import NotApplicable
from regbench.regularizers.augment import (ALLOWED_OPS, Augment, band_gain, blur_image, flip_image, offset_signal,
                                           rotate_image, scale_signal, shift_signal, slope_signal, translate_image)
from tests.regularizers.helpers import bind_toy, end_to_end


def bound(seeds, modality="signal", **knobs) -> Augment:
    x = torch.zeros(1, 40) if modality == "signal" else torch.zeros(1, 1, 8, 8)
    return bind_toy(Augment(**knobs), seeds, 10, modality, x, torch.zeros(1, dtype=torch.long))


ZERO = dict(max_shift=0, scale_range=0.0, band_max_gain=1.0, flip_prob=0.0, max_translate=0.0, max_degrees=0.0,
            max_sigma=0.0, max_slope=0.0, max_offset=0.0)


@pytest.mark.parametrize("modality, op", [(m, op) for m, ops in ALLOWED_OPS.items() for op in ops])
def test_every_op_alone_is_the_identity_at_zero_strength(modality, op):
    shape = (2, 16, 40) if modality == "signal" else (2, 16, 3, 9, 9)
    x = torch.randn(shape)
    out, _ = bound([0, 1], modality, ops=[op], **ZERO).batch(x, torch.zeros(shape[:2], dtype=torch.long))
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)
    strong, _ = bound([0, 1], modality, ops=[op]).batch(x, torch.zeros(shape[:2], dtype=torch.long))
    assert not torch.allclose(strong, x)                                # and the default strength does something


@pytest.mark.parametrize("modality, shape", [("signal", (3, 16, 40)), ("signal", (3, 16, 2, 40)),
                                             ("image", (3, 16, 1, 8, 8)), ("image", (3, 16, 8, 8))])
def test_zero_strength_is_the_identity_and_shapes_are_kept(modality, shape):
    x = torch.randn(shape)
    y = torch.randint(0, 10, shape[:2])
    out, out_y = bound([0, 1, 2], modality, **ZERO).batch(x, y)
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)
    assert out_y is y
    out, _ = bound([0, 1, 2], modality).batch(x, y)                     # default strengths
    assert out.shape == x.shape and not torch.allclose(out, x)


def test_default_ops_follow_the_modality_and_mismatches_fail():
    assert bound([0]).active_ops == ("shift", "scale", "band_gain")
    assert bound([0], "image").active_ops == ("translate", "rotate", "blur")   # an image of unknown kind: no flip
    with pytest.raises(NotApplicable, match="regularizer.augment.ops"):
        bound([0], ops=["rotate"])                                     # an image op on signal data
    with pytest.raises(NotApplicable, match="no ops for tabular data"):
        bound([0], "tabular")
    with pytest.raises(ConfigError, match="regularizer.augment.ops"):
        Augment(ops=["shear"])
    with pytest.raises(ConfigError, match="regularizer.augment.band_max_gain"):
        Augment(band_max_gain=0.5)


def test_translate_moves_whole_pixels_and_zeros_fill_in():
    x = torch.arange(1.0, 26.0).reshape(5, 5).expand(1, 3, 2, 5, 5)    # (P, B, C, H, W), no zero pixel
    out = translate_image(x, torch.tensor([[0, 1, -2]]), torch.tensor([[0, -1, 3]]))
    assert torch.equal(out[0, 0], x[0, 0])
    expected = torch.zeros(2, 5, 5)
    expected[:, 1:, :4] = x[0, 1, :, :4, 1:]                           # one down, one left
    assert torch.equal(out[0, 1], expected)
    expected = torch.zeros(2, 5, 5)
    expected[:, :3, 3:] = x[0, 2, :, 2:, :2]                           # two up, three right
    assert torch.equal(out[0, 2], expected)
    torch.testing.assert_close(translate_image(x[:, :, 0], torch.tensor([[0, 1, -2]]), torch.tensor([[0, -1, 3]])),
                               out[:, :, 0])                           # (P, B, H, W) images too


def test_drawn_translations_stay_within_the_fraction_of_the_side():
    x = torch.zeros(1, 400, 1, 16, 16)
    x[..., 8, 8] = 1.0                                                  # one lit pixel: where did it go?
    out, _ = bound([0], "image", ops=["translate"], max_translate=0.125).batch(x, torch.zeros(1, 400, dtype=torch.long))
    lit = out[0, :, 0].reshape(400, -1).argmax(1)
    down, right = lit // 16 - 8, lit % 16 - 8
    assert set(down.tolist()) == set(right.tolist()) == {-2, -1, 0, 1, 2}   # floor(0.125 * 16) = 2 pixels


def test_the_data_names_its_default_ops_and_explicit_ops_still_win():
    x, y = torch.zeros(1, 1, 8, 8), torch.zeros(1, dtype=torch.long)

    def data(ops):
        return Data("photos", x, y, x, y, x, y, 10, "image", augment_ops=ops)
    hook = Augment()
    hook.bind(Streams([0], torch.device("cpu")), data(("flip", "translate")))
    assert hook.active_ops == ("flip", "translate")
    explicit = Augment(ops=["flip", "blur"])
    explicit.bind(Streams([0], torch.device("cpu")), data(("translate",)))
    assert explicit.active_ops == ("flip", "blur")
    with pytest.raises(NotApplicable, match="names no augmentation that keeps its labels"):
        Augment().bind(Streams([0], torch.device("cpu")), data(()))


def test_shift_is_a_circular_roll_per_example():
    x = torch.arange(10.0).expand(1, 2, 10)
    out = shift_signal(x, torch.tensor([[2, -3]]))
    torch.testing.assert_close(out[0, 0], torch.roll(x[0, 0], 2))
    torch.testing.assert_close(out[0, 1], torch.roll(x[0, 1], -3))


def test_scale_multiplies_each_example_by_its_factor():
    x = torch.randn(2, 3, 40)
    factors = torch.rand(2, 3) + 0.5
    torch.testing.assert_close(scale_signal(x, factors), x * factors[..., None])


def test_band_gain_changes_only_the_chosen_bins():
    x = torch.randn(2, 3, 40, dtype=torch.float64)
    start, width = torch.tensor([[0, 5, 18], [3, 10, 20]]), torch.tensor([[2, 4, 3], [1, 6, 1]])
    gain = torch.tensor([[2.0, 0.5, 3.0], [0.25, 1.5, 4.0]], dtype=torch.float64)
    before, after = torch.fft.rfft(x), torch.fft.rfft(band_gain(x, start, width, gain))
    bins = torch.arange(21)
    for p in range(2):
        for b in range(3):
            inside = (bins >= start[p, b]) & (bins < start[p, b] + width[p, b])
            torch.testing.assert_close(after[p, b, inside], gain[p, b] * before[p, b, inside])
            torch.testing.assert_close(after[p, b, ~inside], before[p, b, ~inside])


def test_flip_is_exact_where_chosen():
    x = torch.randn(1, 2, 3, 5, 6)
    out = flip_image(x, torch.tensor([[True, False]]))
    assert torch.equal(out[0, 0], x[0, 0].flip(-1)) and torch.equal(out[0, 1], x[0, 1])


def test_rotate_by_zero_is_identity_and_by_90_matches_rot90():
    x = torch.randn(2, 3, 1, 9, 9)
    torch.testing.assert_close(rotate_image(x, torch.zeros(2, 3)), x, atol=1e-5, rtol=0)
    quarter = rotate_image(x, torch.full((2, 3), 90.0))
    torch.testing.assert_close(quarter, torch.rot90(x, 1, dims=(-2, -1)), atol=1e-4, rtol=0)


def test_blur_keeps_a_constant_image_and_the_mean_and_smooths_noise():
    constant = torch.full((2, 4, 3, 7, 7), 2.5)
    sigma = torch.rand(2, 4) * 2
    torch.testing.assert_close(blur_image(constant, sigma, radius=6), constant)
    noise = torch.randn(1, 1, 32, 32, dtype=torch.float64)
    blurred = blur_image(noise, torch.ones(1, 1, dtype=torch.float64), radius=3)
    assert blurred.std() < 0.6 * noise.std()                             # white noise, sigma 1: std ≈ 0.28
    torch.testing.assert_close(blur_image(noise, torch.zeros(1, 1), radius=3), noise)


def test_members_draw_differently_and_each_reproduces_from_its_seed():
    x = torch.randn(1, 1, 40).expand(3, 16, 40)                          # one signal, every example and member
    y = torch.zeros(3, 16, dtype=torch.long)
    population, _ = bound([0, 1, 2]).batch(x, y)
    assert not torch.allclose(population[0], population[1])
    alone, _ = bound([1]).batch(x[:1], y[:1])
    torch.testing.assert_close(alone[0], population[1])
    for p in range(3):                                                   # and examples differ within a member
        assert not torch.allclose(population[p, 0], population[p, 1])


@pytest.mark.slow
def test_augment_end_to_end_zero_strength_is_the_baseline_and_composes_with_l2(make_cfg):
    none = end_to_end(make_cfg, "regularizer=none")
    zero = end_to_end(make_cfg, "regularizer=augment", *(f"regularizer.augment.{k}={v}" for k, v in ZERO.items()))
    assert zero["status"] == "completed" and zero["technique"] == "augment"
    # its draws come from its own streams, so the data order and init are the baseline's
    assert zero["runs"][0]["test_loss"] == pytest.approx(none["runs"][0]["test_loss"], rel=1e-5)
    both = end_to_end(make_cfg, "regularizer=[l2,augment]")
    assert both["status"] == "completed" and both["technique"] == "augment+l2"
    assert math.isfinite(both["runs"][0]["test_loss"])
    assert both["runs"][0]["train_loss"] != pytest.approx(none["runs"][0]["train_loss"], rel=1e-3)


def test_drawn_shifts_cover_exactly_the_allowed_range():
    x = torch.arange(40.0).expand(2, 500, 40)
    out, _ = bound([0, 1], ops=["shift"], max_shift=2).batch(x, torch.zeros(2, 500, dtype=torch.long))
    shifts = (out[..., 0] - x[..., 0]).neg().remainder(40)               # x'[0] = x[-s mod 40]
    shifts = torch.where(shifts > 20, shifts - 40, shifts)
    assert set(shifts.long().unique().tolist()) == {-2, -1, 0, 1, 2}
    for s in range(-2, 3):
        chosen = shifts == s
        torch.testing.assert_close(out[chosen], torch.roll(x[chosen], s, dims=-1))


def test_slope_and_offset_are_the_identity_at_zero_and_add_a_ramp_and_a_level():
    x = torch.randn(2, 3, 40)
    torch.testing.assert_close(slope_signal(x, torch.zeros(2, 3)), x)
    torch.testing.assert_close(offset_signal(x, torch.zeros(2, 3)), x)
    slopes = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])
    added = slope_signal(x, slopes) - x                                  # a straight line per example
    torch.testing.assert_close(added[..., -1] - added[..., 0], slopes)  # rises by `slope` over the signal
    torch.testing.assert_close(added.diff(dim=-1), (slopes / 39)[..., None].expand(2, 3, 39))
    torch.testing.assert_close(added.mean(-1), torch.zeros(2, 3), atol=1e-6, rtol=0)   # centred: no level
    offsets = torch.tensor([[0.5, -1.0, 2.0], [0.0, 0.1, -0.3]])
    torch.testing.assert_close(offset_signal(x, offsets) - x, offsets[..., None].expand(2, 3, 40))


def test_slope_and_offset_run_only_when_listed_and_only_on_signals():
    assert "slope" not in bound([0]).active_ops and "offset" not in bound([0]).active_ops
    x = torch.zeros(2, 500, 40)
    y = torch.zeros(2, 500, dtype=torch.long)
    zero, _ = bound([0, 1], ops=["slope", "offset"], max_slope=0.0, max_offset=0.0).batch(x, y)
    assert torch.equal(zero, x)
    out, _ = bound([0, 1], ops=["slope", "offset"], max_slope=2.0, max_offset=0.5).batch(x, y)
    rise, level = out[..., -1] - out[..., 0], out.mean(-1)
    assert rise.abs().max() <= 2.0 + 1e-5 and rise.abs().max() > 1.8      # drawn in [-max_slope, max_slope]
    assert level.abs().max() <= 0.5 + 1e-6 and level.abs().max() > 0.45
    with pytest.raises(NotApplicable, match="regularizer.augment.ops.*choose from flip, translate, rotate, blur"):
        bound([0], "image", ops=["slope"])
    with pytest.raises(ConfigError, match="regularizer.augment.max_slope"):
        Augment(max_slope=-1.0)


@pytest.mark.parametrize("ops", [None, [], "flip"])
def test_ops_is_auto_or_a_list_of_ops(ops):
    # null once meant [flip, rotate, blur] on images; refusing it keeps results stored then from sharing
    # a config hash with runs whose default ops come from the dataset
    with pytest.raises(ConfigError, match=r"regularizer.augment.ops=.*expected auto or a list"):
        Augment(ops=ops)
