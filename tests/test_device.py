"""Device handling end to end: the same training step wherever the tensors live.

This file is device-agnostic: it runs on the default device, which is the CPU
in a plain run, the fake CuPy of ``tests/fake_cupy.py`` when
``tests/test_gpu_guard.py`` re-runs it, and a real GPU under
``MINISGD_DEVICE=cuda``. Each test compares against the same computation done
explicitly on the CPU.
"""

import numpy as np

import minisgd
from minisgd import backend, checkpoint, nn, optim, schedules
from minisgd.data import ArrayDataset, DataLoader
from minisgd.ensemble import SnapshotEnsemble
from minisgd.lr_finder import lr_range_test
from minisgd.nn import functional as F
from minisgd.train import fit

DEVICE = backend.default_device()


def tiny_cnn(seed=0):
    minisgd.random.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Dropout(0.2), nn.Linear(4, 3),
    )


def images(n=24, seed=0):
    rng = np.random.default_rng(seed)
    return ArrayDataset(rng.standard_normal((n, 3, 8, 8)).astype(np.float32), rng.integers(0, 3, size=n))


def train_two_epochs(device):
    model = tiny_cnn().to(device)
    optimizer = optim.SGD(model.parameters(), lr=schedules.cosine(0.1, total_steps=6), momentum=0.9,
                          nesterov=True, weight_decay=1e-3)
    loader = DataLoader(images(), batch_size=8, shuffle=True, seed=3, device=device)
    minisgd.random.manual_seed(11)
    history = fit(model, loader, optimizer, epochs=2, test_loader=DataLoader(images(), batch_size=12, device=device),
                  progress=False)
    return model, optimizer, history


def test_training_on_the_default_device_matches_the_cpu():
    model, optimizer, history = train_two_epochs(DEVICE)
    cpu_model, _, cpu_history = train_two_epochs("cpu")
    np.testing.assert_allclose(history.step_loss, cpu_history.step_loss, rtol=1e-5)
    for name, value in model.state_dict().items():
        np.testing.assert_allclose(value, cpu_model.state_dict()[name], rtol=1e-4, atol=1e-6, err_msg=name)


def test_parameters_buffers_and_batches_live_on_the_device():
    model, optimizer, _ = train_two_epochs(DEVICE)
    assert all(p.device == DEVICE for p in model.parameters())
    assert all(backend.device_of(b) == DEVICE for b in optimizer.buffers if b is not None)
    x, y = next(iter(DataLoader(images(), batch_size=5, device=DEVICE)))
    assert x.device == y.device == DEVICE
    assert model(x).device == DEVICE


def test_state_dicts_are_numpy_so_checkpoints_load_anywhere(tmp_path):
    model, optimizer, _ = train_two_epochs(DEVICE)
    assert all(type(v) is np.ndarray for v in model.state_dict().values())
    assert all(type(v) is np.ndarray for v in optimizer.state_dict().values())
    path = checkpoint.save_checkpoint(tmp_path / "c.npz", model=model, optimizer=optimizer, epoch=2)

    cpu_model = tiny_cnn(seed=1).to("cpu")  # restored onto the CPU
    cpu_optimizer = optim.SGD(cpu_model.parameters(), lr=0.1, momentum=0.9)
    checkpoint.restore(checkpoint.load_checkpoint(path), model=cpu_model, optimizer=cpu_optimizer)
    for name, value in cpu_model.state_dict().items():
        np.testing.assert_array_equal(value, model.state_dict()[name])
    assert all(p.device == "cpu" for p in cpu_model.parameters())


def test_optimizer_state_loaded_onto_the_device_lives_with_the_parameters():
    _, optimizer, _ = train_two_epochs("cpu")
    model = tiny_cnn().to(DEVICE)
    moved = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    moved.load_state_dict(optimizer.state_dict())
    assert all(backend.device_of(b) == DEVICE for b in moved.buffers if b is not None)


def test_lr_range_test_and_snapshot_ensemble_on_the_device():
    model = tiny_cnn().to(DEVICE)
    before = model.state_dict()
    optimizer = optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    loader = DataLoader(images(), batch_size=8, shuffle=True, seed=0, device=DEVICE)
    result = lr_range_test(model, optimizer, loader, start_lr=1e-4, end_lr=1.0, steps=6)
    assert len(result.lrs) >= 1 and np.isfinite(result.suggested_lr)
    for name, value in model.state_dict().items():  # the test restores the weights
        np.testing.assert_array_equal(value, before[name])

    ensemble = SnapshotEnsemble()
    ensemble.add(model)
    for parameter in model.parameters():  # a second snapshot with other weights
        parameter.data *= 0.5
    ensemble.add(model)
    x, y = next(iter(DataLoader(images(), batch_size=24, device=DEVICE)))
    probabilities = ensemble.predict_proba(x)
    assert type(probabilities) is np.ndarray and probabilities.shape == (24, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert 0.0 <= ensemble.accuracy([(x, y)]) <= 1.0


def test_a_cross_entropy_gradient_on_the_device_matches_the_formula():
    rng = np.random.default_rng(0)
    logits, labels = rng.standard_normal((5, 4)), rng.integers(0, 4, size=5)
    z = minisgd.Tensor(logits, requires_grad=True, device=DEVICE)
    F.cross_entropy(z, minisgd.Tensor(labels, device=DEVICE)).backward()
    softmax = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(backend.to_numpy(z.grad), (softmax - np.eye(4)[labels]) / 5, rtol=1e-10)
