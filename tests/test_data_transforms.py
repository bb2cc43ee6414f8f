"""Transforms against explicit per-image loops written here, with the random numbers drawn the same way."""

import numpy as np
import pytest

from minisgd.data.transforms import (
    Compose,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    channel_stats,
    image_transforms,
    random_crop,
    random_horizontal_flip,
    to_float_chw,
)


@pytest.fixture
def images():
    """Six 5×7 RGB uint8 images (non-square, so height and width cannot be confused)."""
    return np.random.default_rng(0).integers(0, 256, size=(6, 5, 7, 3), dtype=np.uint8)


def test_to_float_chw_matches_a_loop(images):
    out = to_float_chw(images, None)
    assert out.dtype == np.float32 and out.shape == (6, 3, 5, 7)
    for n in range(len(images)):
        for c in range(3):
            for i in range(5):
                for j in range(7):
                    assert out[n, c, i, j] == np.float32(images[n, i, j, c] / 255.0)


def test_to_float_chw_rejects_float_and_wrong_rank(images):
    with pytest.raises(TypeError, match="expects uint8 images.*got dtype float32"):
        to_float_chw(images.astype(np.float32))
    with pytest.raises(ValueError, match="4-D NumPy array; got ndarray with shape \\(5, 7, 3\\)"):
        to_float_chw(images[0])


def test_channel_stats_match_numpy_on_the_whole_array(images):
    mean, std = channel_stats(images, chunk=4)  # several chunks, the last one partial
    pixels = images.reshape(-1, 3).astype(np.float64) / 255.0
    np.testing.assert_allclose(mean, pixels.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(std, pixels.std(axis=0), rtol=1e-9)
    floats = np.random.default_rng(1).normal(2.0, 3.0, size=(10, 4, 4, 2))
    mean, std = channel_stats(floats, chunk=3)
    np.testing.assert_allclose(mean, floats.reshape(-1, 2).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(std, floats.reshape(-1, 2).std(axis=0), rtol=1e-9)


def test_normalize_standardises_each_channel(images):
    x = to_float_chw(images)
    mean, std = channel_stats(images)
    out = Normalize(mean, std)(x, None)
    assert out.dtype == np.float32
    for c in range(3):
        np.testing.assert_allclose(out[:, c], (x[:, c] - mean[c]) / std[c], rtol=1e-5, atol=1e-6)
        # Statistics of the same data: each channel ends with mean 0 and std 1.
        assert abs(out[:, c].mean()) < 1e-5 and abs(out[:, c].std() - 1) < 1e-5
    assert Normalize(mean, std)(x.astype(np.float64)).dtype == np.float64


def test_normalize_bad_arguments(images):
    with pytest.raises(ValueError, match="std must be > 0 in every channel; got \\[1.0, 0.0, 1.0\\]"):
        Normalize([0, 0, 0], [1, 0, 1])
    with pytest.raises(ValueError, match="got 3 means and 2 stds"):
        Normalize([0, 0, 0], [1, 1])
    with pytest.raises(ValueError, match="statistics for 3 channels but the batch has 5"):
        Normalize([0, 0, 0], [1, 1, 1])(images.astype(np.float32))  # NHWC by mistake
    with pytest.raises(TypeError, match="apply to_float_chw first"):
        Normalize([0, 0, 0], [1, 1, 1])(images)


@pytest.mark.parametrize("padding", [0, 1, 4])
def test_random_crop_matches_a_loop(images, padding):
    x = to_float_chw(images)
    out = RandomCrop(padding)(x, np.random.default_rng(3))
    # The documented draws: dy for every image, then dx for every image.
    rng = np.random.default_rng(3)
    dy = rng.integers(0, 2 * padding + 1, size=len(x))
    dx = rng.integers(0, 2 * padding + 1, size=len(x))
    assert out.shape == x.shape and out.dtype == x.dtype
    for n in range(len(x)):
        padded = np.zeros((3, 5 + 2 * padding, 7 + 2 * padding), dtype=np.float32)
        padded[:, padding : padding + 5, padding : padding + 7] = x[n]
        np.testing.assert_array_equal(out[n], padded[:, dy[n] : dy[n] + 5, dx[n] : dx[n] + 7])


def test_random_crop_uses_every_offset_and_shifts_content():
    """Without replicating the draws: each output is a shifted copy of its input, black where it slid in."""
    x = np.random.default_rng(0).random((400, 1, 4, 4)) + 1.0  # all pixels > 0, so padding shows as 0
    out = RandomCrop(padding=1)(x, np.random.default_rng(1))
    shifts = set()
    for n in range(len(x)):
        padded = np.pad(x[n], ((0, 0), (1, 1), (1, 1)))
        matches = [
            (sy, sx)
            for sy in (-1, 0, 1)
            for sx in (-1, 0, 1)
            if np.array_equal(out[n], np.roll(padded, (sy, sx), axis=(1, 2))[:, 1:5, 1:5])
        ]
        assert len(matches) == 1
        shifts.add(matches[0])
    assert len(shifts) == 9  # all (2·1+1)² offsets occur


def test_random_horizontal_flip_matches_a_loop(images):
    x = to_float_chw(images)
    out = RandomHorizontalFlip(p=0.5)(x, np.random.default_rng(4))
    u = np.random.default_rng(4).random(len(x))
    for n in range(len(x)):
        expected = x[n, :, :, ::-1] if u[n] < 0.5 else x[n]
        np.testing.assert_array_equal(out[n], expected)
    assert RandomHorizontalFlip(p=1.0)(x, np.random.default_rng(0))[0, 0, 0, 0] == x[0, 0, 0, -1]
    np.testing.assert_array_equal(RandomHorizontalFlip(p=0.0)(x, np.random.default_rng(0)), x)


def test_flip_probability():
    x = np.arange(2.0).reshape(1, 1, 1, 2).repeat(4000, axis=0)
    flipped = RandomHorizontalFlip(p=0.3)(x, np.random.default_rng(0))[:, 0, 0, 0] == 1.0
    assert abs(flipped.mean() - 0.3) < 0.03  # 4000 draws: the standard error is 0.007


def test_compose_applies_in_order_with_one_generator(images):
    steps = [to_float_chw, RandomCrop(2), RandomHorizontalFlip(), Normalize([0.5] * 3, [0.25] * 3)]
    pipeline = Compose(steps)
    out = pipeline(images, np.random.default_rng(9))
    rng = np.random.default_rng(9)
    expected = to_float_chw(images)
    expected = RandomCrop(2)(expected, rng)
    expected = RandomHorizontalFlip()(expected, rng)
    expected = (expected - 0.5) / 0.25
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert "RandomCrop(padding=2)" in repr(pipeline) and "to_float_chw" in repr(pipeline)


def test_image_transforms_pipeline(images):
    mean, std = channel_stats(images)
    plain = image_transforms(mean, std, augment=False)(images, np.random.default_rng(0))
    np.testing.assert_allclose(plain, Normalize(mean, std)(to_float_chw(images)), rtol=1e-6)
    augmented = image_transforms(mean, std, augment=True)
    assert [type(t) for t in augmented.transforms[1:]] == [RandomCrop, RandomHorizontalFlip, Normalize]


def test_lowercase_factories():
    assert random_crop(3).padding == 3 and isinstance(random_crop(), RandomCrop)
    assert random_horizontal_flip(0.2).p == 0.2


def test_bad_transform_arguments():
    with pytest.raises(ValueError, match="padding must be an integer >= 0; got -1"):
        RandomCrop(-1)
    with pytest.raises(ValueError, match="p must be in \\[0, 1\\]; got 1.5"):
        RandomHorizontalFlip(1.5)
    with pytest.raises(TypeError, match="transforms\\[1\\] must be a callable"):
        Compose([to_float_chw, "flip"])
    with pytest.raises(ValueError, match="RandomCrop expects a batch of images as a 4-D NumPy array"):
        RandomCrop(2)(np.zeros((3, 4)), np.random.default_rng(0))



@pytest.mark.parametrize("layout", ["channels-last", "NCHW", "another order"])
def test_normalize_gives_the_formula_in_every_memory_layout_and_keeps_channels_last(layout):
    rng = np.random.default_rng(0)
    x = to_float_chw(rng.integers(0, 256, (4, 5, 6, 3), dtype=np.uint8))  # channels-last memory
    if layout == "NCHW":
        x = np.ascontiguousarray(x)
    elif layout == "another order":
        x = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)  # (N, C, W, H) memory
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
    expected = np.empty_like(x)
    for c in range(3):  # channel by channel, the definition
        expected[:, c] = (x[:, c] - np.float32(mean[c])) / np.float32(std[c])
    before = x.copy()
    out = Normalize(mean, std)(x)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(x, before)  # the input is not modified
    if layout == "channels-last":
        assert out.transpose(0, 2, 3, 1).flags.c_contiguous  # what the first convolution reads without a copy
