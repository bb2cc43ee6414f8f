"""Guards that keep the GPU code path working on a machine without a GPU.

CI has no GPU, and code paths that nothing runs rot. Three guards, chosen to
catch the mistakes that actually break NumPy/CuPy engines:

1. **Every array-module function minisgd calls exists in CuPy.** The package
   reaches its array module through a variable named ``xp`` (the convention of
   DEVELOPERS.md). This test reads every module's syntax tree, collects each
   ``xp.<name>`` chain (``xp.lib.stride_tricks.as_strided`` too), and checks it
   against ``tests/data/cupy_api.txt``, the public names of the real CuPy 14
   package. It also refuses ``add.at`` anywhere, and CuPy imports outside
   ``minisgd/backend.py``.
2. **The device-agnostic test files pass on a fake CuPy** (``tests/fake_cupy.py``):
   arrays that are NumPy underneath but, like CuPy's, refuse NumPy functions
   and refuse to mix with host arrays. A subprocess runs those files with
   ``MINISGD_TEST_DEVICE=fake-cupy``, so every tensor lives on ``"cuda"``.
   This catches ``np.zeros(...)`` where ``xp.zeros(...)`` was meant, NumPy
   functions applied to device data, and state left on the wrong device.
3. **The fake really catches those mistakes** (tests below), so guard 2 cannot
   silently become a no-op.

On a machine with CuPy and a GPU, ``MINISGD_DEVICE=cuda python -m pytest``
runs the suite on the real device, and the ``gpu``-marked test checks it.
"""

import ast
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minisgd
from minisgd import backend

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "minisgd"
sys.path.insert(0, str(Path(__file__).parent))
import fake_cupy  # noqa: E402

# Test files that use only device-agnostic checks (gradcheck, .numpy(), to_numpy):
# they run a second time on the fake CuPy.
DEVICE_AGNOSTIC_TESTS = [
    "tests/test_ops_gradcheck.py",
    "tests/test_gradcheck.py",
    "tests/test_analytic_gradients.py",
    "tests/test_device.py",
    "tests/test_nn_gradcheck.py",
    "tests/test_optim_device.py",
    "tests/test_train.py",
    "tests/test_lr_finder.py",
    "tests/test_ensemble.py",
    "tests/test_landscape.py",
    "tests/test_data_loader.py",
    "tests/test_data_transforms.py",
    "tests/test_winograd.py",
]


def _xp_chains(tree: ast.AST) -> list[tuple[str, int]]:
    """Every outermost attribute chain rooted at the name ``xp``, as ('xp.a.b', line)."""
    chains = []
    inner = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            parts, current = [], node
            while isinstance(current, ast.Attribute):
                parts.append(current.attr)
                inner.add(id(current.value))
                current = current.value
            if isinstance(current, ast.Name) and current.id == "xp":
                chains.append((id(node), "xp." + ".".join(reversed(parts)), node.lineno))
    return [(chain, line) for node_id, chain, line in chains if node_id not in inner]


def _package_modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_array_module_function_the_package_calls_exists_in_cupy():
    missing = []
    for path in _package_modules():
        for chain, line in _xp_chains(ast.parse(path.read_text())):
            name = "cupy" + chain[2:]
            # Attributes of a function's result (xp.float32(1).item) are not module names:
            # keep the longest prefix that is a module or a listed name.
            parts = name.split(".")
            prefixes = [".".join(parts[: k + 1]) for k in range(1, len(parts))]
            if not any(p in fake_cupy.CUPY_API for p in prefixes):
                missing.append(f"{path.relative_to(ROOT)}:{line}: {chain}")
    assert not missing, "array-module names CuPy does not provide:\n" + "\n".join(missing)


def test_the_name_scan_finds_the_calls_it_should():
    """Guard against a scan that silently finds nothing."""
    chains = {c for c, _ in _xp_chains(ast.parse("y = xp.lib.stride_tricks.as_strided(x)\nz = xp.exp(x).sum()"))}
    assert chains == {"xp.lib.stride_tricks.as_strided", "xp.exp"}
    ops_chains = {c for c, _ in _xp_chains(ast.parse((PACKAGE / "ops.py").read_text()))}
    assert {"xp.zeros", "xp.bincount", "xp.broadcast_to"} <= ops_chains


def test_no_add_at_and_cupy_imported_only_by_the_backend():
    offenders = []
    for path in _package_modules():
        text = path.read_text()
        if ".add.at(" in text:
            offenders.append(f"{path.relative_to(ROOT)} uses add.at")
        tree = ast.parse(text)
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            if any(n.split(".")[0] == "cupy" for n in names) and path.name != "backend.py":
                offenders.append(f"{path.relative_to(ROOT)} imports cupy")
    assert not offenders, offenders


def test_device_agnostic_tests_pass_on_the_fake_cupy():
    files = [f for f in DEVICE_AGNOSTIC_TESTS if (ROOT / f).exists()]
    assert "tests/test_ops_gradcheck.py" in files
    env = dict(os.environ, MINISGD_TEST_DEVICE="fake-cupy")
    env.pop("MINISGD_DEVICE", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *files],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout


# --------------------------------------------------- the fake catches mistakes
@pytest.fixture
def fake():
    previous = sys.modules.get("cupy")
    cupy = fake_cupy.install()
    yield cupy
    if previous is None:
        sys.modules.pop("cupy", None)
    else:
        sys.modules["cupy"] = previous


def test_fake_refuses_numpy_functions_on_device_data(fake):
    x = fake.asarray(np.ones(3))
    assert backend.device_of(x) == "cuda" and backend.get_array_module(x) is fake
    with pytest.raises(TypeError, match="numpy.concatenate was called on device"):
        np.concatenate([x, x])
    with pytest.raises(TypeError, match="numpy.zeros_like"):
        np.zeros_like(x)


def test_fake_refuses_mixing_host_and_device_arrays(fake):
    x = fake.asarray(np.ones(3))
    with pytest.raises(TypeError, match="mixes a device"):
        x + np.ones(3)
    with pytest.raises(TypeError, match="host NumPy array"):
        fake.maximum(np.ones(3), x)


def test_fake_offers_only_cupys_names(fake):
    assert callable(fake.exp) and callable(fake.lib.stride_tricks.as_strided)
    with pytest.raises(AttributeError, match="does not exist in CuPy"):
        fake.float_power_of_nothing  # noqa: B018
    with pytest.raises(AttributeError):
        fake.add.at  # noqa: B018  (a wrapped function: NumPy's ufunc.at is not offered)


def test_fake_transfer_copies_and_get_returns_numpy(fake):
    host = np.arange(3.0)
    tensor = minisgd.Tensor(host, device="cuda")
    host[0] = 99.0
    assert tensor.device == "cuda"
    assert type(tensor.numpy()) is np.ndarray and tensor.numpy()[0] == 0.0
    assert tensor.to("cpu").device == "cpu"


# ------------------------------------------------------------- the real GPU
@pytest.mark.gpu
@pytest.mark.skipif(
    not backend.gpu_available() or getattr(sys.modules.get("cupy"), "__version__", "") == "fake",
    reason="needs CuPy and a CUDA GPU",
)
def test_a_training_step_on_the_real_gpu_matches_the_cpu():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((8, 5)), rng.standard_normal((5, 3))
    results = []
    for device in ("cpu", "cuda"):
        weight = minisgd.Tensor(w, requires_grad=True, device=device)
        loss = (minisgd.Tensor(x, device=device) @ weight).tanh().sum()
        loss.backward()
        results.append(backend.to_numpy(weight.grad))
    np.testing.assert_allclose(results[0], results[1], rtol=1e-10)
