"""SyntheticShapes: CIFAR-10's format, determinism, balance, and classes a linear model cannot separate."""

import numpy as np
import pytest

from minisgd.data import DataLoader, SyntheticShapes, make_shapes


def test_format_is_cifar10s():
    ds = SyntheticShapes(train=True, n_samples=50)
    assert ds.data.shape == (50, 32, 32, 3) and ds.data.dtype == np.uint8
    assert ds.targets.shape == (50,) and ds.targets.dtype == np.int64
    assert len(ds.classes) == 10 and len(set(ds.classes)) == 10
    assert len(ds) == 50 and ds[0][0].shape == (32, 32, 3)
    x, y = next(iter(DataLoader(ds, batch_size=8)))
    assert x.shape == (8, 32, 32, 3) and y.shape == (8,)


def test_default_sizes():
    assert len(SyntheticShapes(train=False)) == 2_000


def test_deterministic_and_seed_dependent():
    a = SyntheticShapes(train=True, n_samples=100, seed=3)
    b = SyntheticShapes(train=True, n_samples=100, seed=3)
    c = SyntheticShapes(train=True, n_samples=100, seed=4)
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.targets, b.targets)
    assert not np.array_equal(a.data, c.data)


def test_train_and_test_splits_share_no_image():
    train = SyntheticShapes(train=True, n_samples=300)
    test = SyntheticShapes(train=False, n_samples=300)
    assert not {image.tobytes() for image in train.data} & {image.tobytes() for image in test.data}


@pytest.mark.parametrize("n", [1000, 1003, 7])
def test_balanced(n):
    counts = np.bincount(make_shapes(n, seed=1)[1], minlength=10)
    assert counts.sum() == n and counts.max() - counts.min() <= 1


def test_labels_are_shuffled():
    labels = make_shapes(100, seed=0)[1]
    assert not np.array_equal(labels, np.arange(100) % 10)


def test_noise_has_the_given_standard_deviation():
    """Same seed, same drawing; only the noise differs (uniform noise, clipped at 0 and 255)."""
    clean = make_shapes(200, seed=2, noise=0.0)[0].astype(np.float64)
    noisy = make_shapes(200, seed=2, noise=0.1)[0].astype(np.float64)
    inside = (clean > 40) & (clean < 215)  # pixels the clipping cannot reach
    assert abs((noisy - clean)[inside].std() / 255 - 0.1) < 0.005


def test_images_use_colour_and_vary_within_each_class():
    images, labels = make_shapes(200, seed=0, noise=0.0)  # without noise, so only the pattern varies
    for label in range(10):
        images_of_class = images[labels == label].astype(np.float64)
        assert images_of_class.std(axis=(1, 2, 3)).min() > 10  # every image shows its pattern
        assert images_of_class.mean(axis=(1, 2)).std(axis=0).min() > 10  # colours differ between images


def _ridge_accuracy(train_features, train_labels, test_features, test_labels, penalty):
    """Least squares on one-hot labels with an L2 penalty, features standardised: a linear classifier."""
    mean, std = train_features.mean(axis=0), train_features.std(axis=0) + 1e-8
    A = np.c_[(train_features - mean) / std, np.ones(len(train_features))]
    B = np.c_[(test_features - mean) / std, np.ones(len(test_features))]
    W = np.linalg.solve(A.T @ A + penalty * np.eye(A.shape[1]), A.T @ np.eye(10)[train_labels])
    return ((B @ W).argmax(axis=1) == test_labels).mean()


def _pooled_pixels(data):
    """2×2 average pooling is linear, so a linear model on it is a linear model on the pixels."""
    return (data.reshape(len(data), 16, 2, 16, 2, 3).mean(axis=(2, 4)) / 255).reshape(len(data), -1)


def _spectrum(data):
    """|FFT| of the grey image: the same wherever the pattern sits, whatever its colours' sign."""
    grey = data.astype(np.float64).mean(axis=3)
    grey -= grey.mean(axis=(1, 2), keepdims=True)
    return np.log1p(np.abs(np.fft.rfft2(grey)).reshape(len(data), -1))


def test_classes_are_learnable_but_not_linearly():
    """A linear model on the pixels stays far from perfect; shift-invariant features do much better.

    That gap is what a CNN closes: its convolutions see a pattern wherever it is.
    """
    train = SyntheticShapes(train=True, n_samples=2000)
    test = SyntheticShapes(train=False, n_samples=1000)
    linear = _ridge_accuracy(
        _pooled_pixels(train.data), train.targets, _pooled_pixels(test.data), test.targets, penalty=1000
    )
    invariant = _ridge_accuracy(
        _spectrum(train.data), train.targets, _spectrum(test.data), test.targets, penalty=100
    )
    assert 0.15 < linear < 0.5, linear  # above chance (0.1), far from solved
    assert invariant > 0.55 and invariant > linear + 0.2, (invariant, linear)


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_samples must be an integer >= 1; got 0"):
        SyntheticShapes(n_samples=0)
    with pytest.raises(ValueError, match="SyntheticShapes: seed must be an integer >= 0; got -1"):
        SyntheticShapes(seed=-1)
    with pytest.raises(ValueError, match="make_shapes: noise must be >= 0; got -0.1"):
        make_shapes(10, noise=-0.1)
