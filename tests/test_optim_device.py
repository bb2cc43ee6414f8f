"""Every optimizer, gradient clipping and SWA on the default device, against the same run on the CPU.

Device-agnostic: this runs on the CPU in a plain run, on the fake CuPy of
``tests/fake_cupy.py`` when ``tests/test_gpu_guard.py`` re-runs it, and on a
real GPU under ``MINISGD_DEVICE=cuda``.
"""

import numpy as np
import pytest

import minisgd
from minisgd import backend, nn, optim, schedules
from minisgd.nn import functional as F
from minisgd.nn.utils import clip_grad_norm_, clip_grad_value_
from minisgd.optim.swa_utils import AveragedModel, update_bn

DEVICE = backend.default_device()

OPTIMIZERS = [
    (optim.SGD, dict(momentum=0.9, nesterov=True, weight_decay=1e-3)),
    (optim.HeavyBallSGD, dict(momentum=0.9, weight_decay=1e-3)),
    (optim.Adagrad, dict(lr_decay=0.01, weight_decay=1e-3, initial_accumulator_value=0.1)),
    (optim.RMSprop, dict(momentum=0.9, centered=True, weight_decay=1e-3)),
    (optim.Adam, dict(amsgrad=True, weight_decay=1e-3)),
    (optim.AdamW, dict(amsgrad=True)),
]


def tiny_bn_cnn():
    minisgd.random.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(36, 3))


def train(device, optimizer_class, options):
    """Five clipped updates, a save/load of the optimizer state midway, SWA and update_bn; all arrays on host."""
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((6, 3, 8, 8)).astype(np.float32), rng.integers(0, 3, size=6)) for _ in range(5)]
    model = tiny_bn_cnn().to(device)
    optimizer = optimizer_class(
        [{"params": [p for n, p in model.named_parameters() if not n.endswith("bias")]},
         {"params": [p for n, p in model.named_parameters() if n.endswith("bias")], "weight_decay": 0.0}],
        lr=schedules.cosine(0.01, 5), **options)
    swa = AveragedModel(model)
    norms = []
    for t, (x, y) in enumerate(batches):
        optimizer.zero_grad()
        F.cross_entropy(model(minisgd.Tensor(x, device=device)), minisgd.Tensor(y, device=device)).backward()
        norms.append(clip_grad_norm_(model.parameters(), max_norm=0.5))
        clip_grad_value_(model.parameters(), 0.05)
        optimizer.step()
        swa.update_parameters(model)
        if t == 2:  # a round trip through host arrays, as a checkpoint does
            optimizer.load_state_dict(optimizer.state_dict())
    update_bn([minisgd.Tensor(x, device=device) for x, _ in batches], swa)
    return norms, model.state_dict(), swa.state_dict(), optimizer.state_dict()


@pytest.mark.parametrize("optimizer_class, options", OPTIMIZERS, ids=lambda v: getattr(v, "__name__", ""))
def test_same_run_on_the_default_device_and_the_cpu(optimizer_class, options):
    here = train(DEVICE, optimizer_class, options)
    cpu = train("cpu", optimizer_class, options)
    np.testing.assert_allclose(here[0], cpu[0], rtol=1e-5)
    for ours, reference in zip(here[1:], cpu[1:]):
        assert set(ours) == set(reference)
        for key in ours:
            np.testing.assert_allclose(ours[key], reference[key], rtol=1e-5, atol=1e-6, err_msg=key)
    assert cpu[2]["n_averaged"] == 5 and len(cpu[3]) > 1  # state beyond t was saved and compared
