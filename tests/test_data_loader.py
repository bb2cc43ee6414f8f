"""DataLoader: batch sizes, dtypes, seeded shuffling, the epoch counter and exact resumption.

The expected orders are built here from the documented contract (epoch ``e``
draws from ``np.random.default_rng([seed, e])``: the permutation first, then
the transform's numbers, batch after batch), written independently of the loader.
"""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

import minisgd
from minisgd.data import ArrayDataset, DataLoader

sys.path.insert(0, str(Path(__file__).parent))
import fake_cupy  # noqa: E402


def _dataset(n=10, features=3, dtype=np.float32):
    inputs = np.arange(n * features, dtype=dtype).reshape(n, features)
    targets = np.arange(n) % 3
    return inputs, targets


def _epoch(loader):
    """One epoch as lists of NumPy batches."""
    xs, ys = [], []
    for x, y in loader:
        assert isinstance(x, minisgd.Tensor) and isinstance(y, minisgd.Tensor)
        xs.append(x.numpy())
        ys.append(y.numpy())
    return xs, ys


@pytest.mark.parametrize(
    "n, batch_size, drop_last, sizes",
    [
        (10, 3, False, [3, 3, 3, 1]),
        (10, 3, True, [3, 3, 3]),
        (10, 5, False, [5, 5]),
        (10, 5, True, [5, 5]),
        (10, 1, False, [1] * 10),  # pure SGD
        (10, None, False, [10]),  # full-batch gradient descent
        (10, 25, False, [10]),
        (7, None, True, [7]),
    ],
)
def test_batch_sizes_and_len(n, batch_size, drop_last, sizes):
    loader = DataLoader(_dataset(n), batch_size=batch_size, drop_last=drop_last)
    xs, ys = _epoch(loader)
    assert [len(x) for x in xs] == sizes == [len(y) for y in ys]
    assert len(loader) == len(sizes)


def test_without_shuffle_batches_are_the_data_in_order():
    inputs, targets = _dataset(10)
    xs, ys = _epoch(DataLoader((inputs, targets), batch_size=4))
    np.testing.assert_array_equal(np.concatenate(xs), inputs)
    np.testing.assert_array_equal(np.concatenate(ys), targets)


@pytest.mark.parametrize(
    "input_dtype, target, expected_x, expected_y",
    [
        (np.uint8, np.array([0, 1, 2, 1], dtype=np.int32), np.float32, np.int64),
        (np.float32, np.array([0, 1, 2, 1], dtype=np.uint8), np.float32, np.int64),
        (np.float64, np.array([0, 1, 2, 1]), np.float64, np.int64),  # float64 is kept
        (np.int64, np.array([0.5, 1.5, 2.5, 3.5], dtype=np.float32), np.float32, np.float32),
        (np.float64, np.array([0.5, 1.5, 2.5, 3.5]), np.float64, np.float64),  # regression targets
    ],
)
def test_dtypes(input_dtype, target, expected_x, expected_y):
    inputs = np.arange(8).reshape(4, 2).astype(input_dtype)
    x, y = next(iter(DataLoader((inputs, target), batch_size=4)))
    assert x.dtype == expected_x and y.dtype == expected_y
    np.testing.assert_array_equal(x.numpy(), inputs.astype(expected_x))
    np.testing.assert_array_equal(y.numpy(), target.astype(expected_y))


def test_objects_with_data_and_targets_are_datasets():
    inputs, targets = _dataset(6)
    dataset = ArrayDataset(inputs, list(targets), classes=["a", "b", "c"])
    xs, ys = _epoch(DataLoader(dataset, batch_size=None))
    np.testing.assert_array_equal(xs[0], inputs)
    np.testing.assert_array_equal(ys[0], targets)
    assert len(dataset) == 6 and dataset[2][1] == targets[2]


def test_batches_do_not_share_memory_with_the_data():
    inputs, targets = _dataset(4)
    original = inputs.copy()
    for x, _ in DataLoader((inputs, targets), batch_size=2, device="cpu"):
        x.data[...] = -1.0
    np.testing.assert_array_equal(inputs, original)


def test_shuffle_follows_seed_and_epoch():
    n, batch_size, seed = 11, 4, 7
    inputs, targets = _dataset(n)
    loader = DataLoader((inputs, targets), batch_size=batch_size, shuffle=True, seed=seed)
    orders = []
    for epoch in range(3):
        xs, ys = _epoch(loader)
        order = np.random.default_rng([seed, epoch]).permutation(n)
        np.testing.assert_array_equal(np.concatenate(xs), inputs[order])
        np.testing.assert_array_equal(np.concatenate(ys), targets[order])
        orders.append(order)
        assert loader.epoch == epoch + 1
    # Each epoch sees every example once, in a different order.
    assert all(sorted(order) == list(range(n)) for order in orders)
    assert not np.array_equal(orders[0], orders[1]) and not np.array_equal(orders[1], orders[2])


def test_same_seed_same_batches_different_seed_different_batches():
    data = _dataset(50)
    first = _epoch(DataLoader(data, batch_size=8, shuffle=True, seed=3))[0]
    again = _epoch(DataLoader(data, batch_size=8, shuffle=True, seed=3))[0]
    other = _epoch(DataLoader(data, batch_size=8, shuffle=True, seed=4))[0]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def test_seed_none_picks_a_seed_that_reproduces_the_run():
    data = _dataset(30)
    loader = DataLoader(data, batch_size=8, shuffle=True)
    assert isinstance(loader.seed, int) and loader.seed >= 0
    replay = DataLoader(data, batch_size=8, shuffle=True, seed=loader.seed)
    for a, b in zip(_epoch(loader)[0], _epoch(replay)[0]):
        np.testing.assert_array_equal(a, b)


def test_drop_last_with_shuffle_skips_the_tail_of_the_permutation():
    n, seed = 10, 1
    inputs, targets = _dataset(n)
    xs, _ = _epoch(DataLoader((inputs, targets), batch_size=4, shuffle=True, seed=seed, drop_last=True))
    order = np.random.default_rng([seed, 0]).permutation(n)[:8]
    np.testing.assert_array_equal(np.concatenate(xs), inputs[order])


def test_transform_gets_numpy_batch_and_the_epoch_generator():
    """The transform draws from the epoch's generator right after the permutation."""
    n, batch_size, seed = 9, 4, 5
    inputs, targets = _dataset(n)

    def add_noise(x, rng):
        assert isinstance(x, np.ndarray)
        return x + rng.random(x.shape)

    loader = DataLoader(
        (inputs, targets), batch_size=batch_size, shuffle=True, seed=seed, transform=add_noise
    )
    for epoch in range(2):
        xs, _ = _epoch(loader)
        # The same thing written out by hand.
        rng = np.random.default_rng([seed, epoch])
        order = rng.permutation(n)
        for b, x in enumerate(xs):
            rows = order[b * batch_size : (b + 1) * batch_size]
            expected = (inputs[rows] + rng.random((len(rows), 3))).astype(np.float32)
            np.testing.assert_array_equal(x, expected)


def test_resume_at_an_epoch_boundary_gives_the_uninterrupted_batches():
    inputs = np.random.default_rng(0).random((23, 2))
    targets = np.arange(23) % 2

    def jitter(x, rng):
        return x * rng.uniform(0.5, 1.5, size=(len(x), 1))

    def make():
        return DataLoader((inputs, targets), batch_size=5, shuffle=True, seed=11, transform=jitter)

    uninterrupted = make()
    epochs = [_epoch(uninterrupted) for _ in range(4)]

    first_run = make()
    for _ in range(2):
        _epoch(first_run)
    saved = first_run.state_dict()
    assert saved == {"seed": 11, "epoch": 2}

    resumed = make()
    resumed.load_state_dict(saved)
    for expected in epochs[2:]:
        got = _epoch(resumed)
        for a, b in zip(expected[0] + expected[1], got[0] + got[1]):
            np.testing.assert_array_equal(a, b)

    by_set_epoch = make()
    by_set_epoch.set_epoch(3)
    for a, b in zip(epochs[3][0], _epoch(by_set_epoch)[0]):
        np.testing.assert_array_equal(a, b)


def test_an_interrupted_epoch_is_not_counted():
    data = _dataset(12)
    loader = DataLoader(data, batch_size=4, shuffle=True, seed=2)
    for x, _ in loader:
        first = x.numpy()
        break
    assert loader.epoch == 0
    np.testing.assert_array_equal(_epoch(loader)[0][0], first)
    assert loader.epoch == 1


def test_unshuffled_loader_with_random_transform_still_varies_per_epoch():
    inputs, targets = _dataset(6)
    loader = DataLoader(
        (inputs, targets), batch_size=6, seed=0, transform=lambda x, rng: x + rng.random(x.shape)
    )
    a, b = _epoch(loader)[0][0], _epoch(loader)[0][0]
    np.testing.assert_array_equal(np.floor(a), inputs)  # order kept
    assert not np.array_equal(a, b)


def test_device_cuda_moves_batches(monkeypatch):
    """On "cuda" the batches are device arrays (the CPU stand-in for CuPy from fake_cupy.py)."""
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy.make_fake_cupy())
    inputs, targets = _dataset(4)
    x, y = next(iter(DataLoader((inputs, targets), batch_size=4, device="cuda")))
    assert x.device == "cuda" and y.device == "cuda"
    np.testing.assert_array_equal(x.numpy(), inputs)
    np.testing.assert_array_equal(y.numpy(), targets)


def test_default_device_follows_the_environment(monkeypatch):
    monkeypatch.setenv("MINISGD_DEVICE", "cpu")
    x, _ = next(iter(DataLoader(_dataset(2), batch_size=2)))
    assert x.device == "cpu"
    assert DataLoader(_dataset(2)).device == "cpu"


def test_len_is_ceil_or_floor():
    for n in range(1, 12):
        for batch_size in range(1, n + 1):
            assert len(DataLoader(_dataset(n), batch_size=batch_size)) == math.ceil(n / batch_size)
            assert len(DataLoader(_dataset(n), batch_size=batch_size, drop_last=True)) == n // batch_size


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, True, "8"])
def test_bad_batch_size(batch_size):
    with pytest.raises(ValueError, match=r"batch_size must be an integer >= 1.*got"):
        DataLoader(_dataset(4), batch_size=batch_size)


def test_bad_inputs_get_clear_errors():
    inputs, targets = _dataset(4)
    with pytest.raises(ValueError, match="same number of rows; got 4 and 3"):
        DataLoader((inputs, targets[:3]))
    with pytest.raises(ValueError, match="empty"):
        DataLoader((inputs[:0], targets[:0]))
    with pytest.raises(TypeError, match="pair of arrays"):
        DataLoader(inputs)
    with pytest.raises(ValueError, match="drop_last=True leaves no batch"):
        DataLoader((inputs, targets), batch_size=5, drop_last=True)
    with pytest.raises(ValueError, match=r"DataLoader: seed must be an integer >= 0, or None .*; got -1"):
        DataLoader((inputs, targets), seed=-1)
    with pytest.raises(TypeError, match="transform must be a callable"):
        DataLoader((inputs, targets), transform="flip")
    with pytest.raises(ValueError, match="device must be one of 'cpu', 'cuda'; got 'tpu'"):
        DataLoader((inputs, targets), device="tpu")
    with pytest.raises(TypeError, match="targets must be numeric"):
        DataLoader((inputs, np.array(["a", "b", "c", "d"])))
    loader = DataLoader((inputs, targets))
    with pytest.raises(ValueError, match="epoch must be an integer >= 0; got -1"):
        loader.set_epoch(-1)
    bad = DataLoader((inputs, targets), batch_size=2, transform=lambda x, rng: x[:1])
    expected = r"transform must return a NumPy array with one row per example \(2 rows\)"
    with pytest.raises(TypeError, match=expected):
        next(iter(bad))
