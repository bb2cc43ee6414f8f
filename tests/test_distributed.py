"""Data parallelism under ``mpiexec``: the workers' results against one ordinary process.

Each ``mpiexec -n K`` run of tests/distributed_checks.py is started once per
module (K = 2, 3, 4; the machine is oversubscribed, which is fine for
correctness) and saves rank 0's numbers; the expected values are computed
here, in this process: NumPy's sum of every rank's inputs for the all-reduce,
and ``train.fit`` on the whole batch for the gradients and trajectories.
Skipped cleanly where mpi4py or mpiexec is absent.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import distributed_checks as checks  # noqa: E402

pytest.importorskip("mpi4py")
MPIEXEC = shutil.which("mpiexec", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
if MPIEXEC is None:
    pytest.skip("mpiexec is not installed (pip install mpich)", allow_module_level=True)
ENV = {**os.environ, "MINISGD_WORKER_TIMEOUT": "30", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
ALL = ["allreduce", "gradients", "trajectory", "local-sgd", "batchnorm", "async"]


def mpirun(k, *args, timeout=120, **kwargs):
    return subprocess.run([MPIEXEC, "-n", str(k), sys.executable, *args], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=timeout, **kwargs)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """results(K) -> {check: arrays saved by rank 0}, each K run once."""
    done = {}

    def get(k):
        if k not in done:
            out = tmp_path_factory.mktemp(f"workers{k}")
            wanted = ["allreduce"] if k == 3 else ALL
            proc = mpirun(k, "tests/distributed_checks.py", str(out), *wanted)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            done[k] = {p.stem: dict(np.load(p)) for p in out.glob("*.npz")}
        return done[k]

    return get


# --------------------------------------------------------------- all-reduce
@pytest.mark.parametrize("k", [2, 3, 4])
def test_allreduce_equals_numpy_sum(results, k):
    inputs = [checks.rank_inputs(rank) for rank in range(k)]
    saved = results(k)["allreduce"]
    for algorithm in ("mpi", "ring"):
        for kind, which in (("int", 0), ("float", 1)):
            for op in ("sum", "mean"):
                assert saved[f"{algorithm}.{kind}.{op}.same_on_all"], (algorithm, kind, op)
                for index, n in enumerate(checks.SIZES):
                    expected = np.sum([np.asarray(inputs[r][which][index], np.float64) for r in range(k)], axis=0)
                    if op == "mean":
                        expected = expected / k
                    got = saved[f"{algorithm}.{kind}.{op}.{n}"]
                    assert got.shape == (n,)
                    if kind == "int" and op == "sum":
                        assert np.array_equal(got, expected), (algorithm, n)  # integers: bit-equal
                    elif kind == "int" and k in (2, 4):
                        assert np.array_equal(got, expected), (algorithm, n)  # divided by a power of 2: exact
                    elif kind == "int":
                        np.testing.assert_allclose(got, expected, rtol=1e-15)
                    else:
                        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_outside_mpiexec_allreduce_is_a_copy():
    a = np.arange(5.0)
    (b,) = checks.distributed.allreduce([a], "mean", "ring")
    assert np.array_equal(a, b) and b is not a
    assert checks.distributed.world() == (0, 1)


# ---------------------------------------------------- synchronous = one process
@pytest.mark.parametrize("k", [2, 4])
def test_one_step_gradients_equal_one_process(results, k):
    expected, loss = checks.first_batch_gradients()
    for mode in ("sync", "ring"):
        saved = results(k)[f"gradients-{mode}"]
        assert float(saved["loss"]) == pytest.approx(loss, rel=1e-6)
        for index, grad in enumerate(expected):
            np.testing.assert_allclose(saved[str(index)], grad, rtol=0, atol=1e-6 * max(1, np.abs(grad).max()))
            assert saved[str(index)].dtype == np.float32


@pytest.fixture(scope="module")
def one_process_trajectory():
    net, history = checks.float64_run()
    return {**net.state_dict(), "step_loss": np.array(history.step_loss)}


@pytest.mark.parametrize("k", [2, 4])
def test_twenty_float64_steps_equal_one_process(results, one_process_trajectory, k):
    expected = one_process_trajectory
    assert len(expected["step_loss"]) == 20
    for name in ("trajectory-sync", "trajectory-ring", "local-sgd-1"):  # local SGD with H = 1 is synchronous SGD
        saved = results(k)[name]
        for key, value in expected.items():
            np.testing.assert_allclose(saved[key], value, rtol=0, atol=1e-10, err_msg=f"{name}: {key}")


@pytest.mark.parametrize("k", [2, 4])
def test_local_sgd_with_h4_is_not_synchronous(results, one_process_trajectory, k):
    saved = results(k)["local-sgd-4"]
    gap = max(np.abs(saved[key] - value).max() for key, value in one_process_trajectory.items() if key != "step_loss")
    assert gap > 1e-6  # averaging every 4 updates is another algorithm: the weights differ


@pytest.mark.parametrize("k", [2, 4])
def test_batchnorm_statistics_are_per_worker(results, k):
    """Documented: each worker normalises its own B/K slice, so the gradient is the mean of the slices' gradients."""
    x, y = checks.float64_data(16, seed=3)
    saved = results(k)["batchnorm"]
    whole_net, whole = checks.bn_gradients(None, x, y)
    per_slice = []
    for rank in range(k):
        lo, hi = rank * 16 // k, (rank + 1) * 16 // k
        per_slice.append(checks.bn_gradients(None, x[lo:hi], y[lo:hi]))
    for index in range(len(whole)):
        mean_of_slices = np.mean([grads[index] for _, grads in per_slice], axis=0)
        np.testing.assert_allclose(saved[str(index)], mean_of_slices, rtol=1e-9, atol=1e-12)
    conv_weight = 0
    assert np.abs(saved[str(conv_weight)] - whole[conv_weight]).max() > 1e-4  # not the whole batch's gradient
    np.testing.assert_allclose(saved["running_mean"], np.asarray(per_slice[0][0][1].running_mean), rtol=1e-12)


# -------------------------------------------------------------------- async
def test_async_with_one_worker_is_the_single_process_run(results, one_process_trajectory):
    saved = results(2)["async"]
    assert np.array_equal(saved["staleness"], np.zeros(20))
    for key, value in one_process_trajectory.items():
        np.testing.assert_allclose(saved[key], value, rtol=0, atol=1e-10, err_msg=key)


def test_async_records_the_staleness_of_every_gradient(results):
    staleness = results(4)["async"]["staleness"]
    assert len(staleness) == 20 and staleness.min() >= 0 and staleness.max() <= 20
    assert staleness[0] == 0  # the first gradient applied was computed at the initial weights
    assert staleness.max() >= 1  # three workers: some gradients were computed at older weights


# ------------------------------------------------------------ the command line
def train(k, out, *options, timeout=120):
    args = ["-m", "minisgd", "train", "--quiet", "--train-size", "640", "--test-size", "300", "--out", str(out),
            *options]
    if k is None:
        return subprocess.run([sys.executable, *args], cwd=ROOT, env=ENV, capture_output=True, text=True,
                              timeout=timeout)
    return mpirun(k, *args, timeout=timeout)


def final_scores(stdout):
    line = [ln for ln in stdout.splitlines() if ln.startswith("test_acc=")][-1]
    return {key: float(value) for key, value in (part.split("=") for part in line.split())}


def test_cli_sync_on_2_and_4_workers_ends_where_one_process_ends(tmp_path):
    one = train(None, tmp_path / "one", "--epochs", "2")
    assert one.returncode == 0, one.stderr
    for k in (2, 4):
        many = train(k, tmp_path / f"k{k}", "--epochs", "2", "--data-parallel", "sync")
        assert many.returncode == 0, many.stderr
        assert f"K = {k} workers" in many.stdout and many.stdout.count("saved in") == 1  # rank 0 alone prints
        got, expected = final_scores(many.stdout), final_scores(one.stdout)
        assert got["test_acc"] == pytest.approx(expected["test_acc"], abs=2 / 300)  # at most a rounding flip
        assert got["test_loss"] == pytest.approx(expected["test_loss"], rel=1e-3)


def test_cli_without_mpiexec_runs_as_one_worker_and_says_so(tmp_path):
    proc = train(None, tmp_path / "run", "--epochs", "1", "--data-parallel", "ring", "--train-size", "64")
    assert proc.returncode == 0, proc.stderr
    assert "runs as one process, K = 1" in proc.stdout


def test_cli_refuses_a_batch_the_workers_cannot_share(tmp_path):
    proc = train(3, tmp_path / "run", "--epochs", "1", "--data-parallel", "sync", "--batch-size", "64")
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines == ["minisgd: error: --batch-size must be divisible by the number of workers K = 3 (each takes "
                     "B/K images of the global batch B); got 64"]
    assert not (tmp_path / "run").exists()


def test_cli_resume_on_another_number_of_workers_keeps_the_global_batch(tmp_path):
    first = train(2, tmp_path / "run", "--epochs", "1", "--schedule", "constant", "--data-parallel", "sync")
    assert first.returncode == 0, first.stderr
    refused = mpirun(3, "-m", "minisgd", "train", "--quiet", "--resume", str(tmp_path / "run"), "--epochs", "2")
    assert refused.returncode == 2 and refused.stderr.strip().splitlines() == [
        "minisgd: error: --batch-size must be divisible by the number of workers K = 3 (each takes B/K images of "
        "the global batch B); got 64"]
    resumed = mpirun(4, "-m", "minisgd", "train", "--quiet", "--resume", str(tmp_path / "run"), "--epochs", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert "trained so far on K = 2, continuing on K = 4 with the same global batch" in resumed.stdout
    one = train(None, tmp_path / "one", "--epochs", "2", "--schedule", "constant")
    assert final_scores(resumed.stdout)["test_loss"] == pytest.approx(final_scores(one.stdout)["test_loss"], rel=1e-3)


def _start(k, out, *options):
    args = [MPIEXEC, "-n", str(k), sys.executable, "-m", "minisgd", "train", "--quiet", "--train-size", "640",
            "--test-size", "100", "--out", str(out), "--schedule", "constant", *options]
    return subprocess.Popen(args, cwd=ROOT, env={**ENV, "MINISGD_WORKER_TIMEOUT": "5"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _pid_of_rank(proc, rank):
    import re
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        found = re.search(r"process ids: rank (.*)\)", line)
        if found:
            return int(dict(item.split("=") for item in found.group(1).split(", "))[str(rank)])
    raise AssertionError("no process-id line")


def _wait_for_checkpoint(out):
    import time

    deadline = time.monotonic() + 60
    while not (out / "checkpoint.npz").exists():
        assert time.monotonic() < deadline, "no checkpoint within 60 s"
        time.sleep(0.05)


@pytest.mark.parametrize("how", ["SIGKILL", "SIGSTOP"])
def test_a_lost_worker_stops_the_run_and_keeps_the_checkpoint(tmp_path, how):
    """SIGKILL: mpiexec stops every rank at once, naming the dead PID (the start line maps it to its rank).
    SIGSTOP (a hung worker): the others' bounded waits run out and rank 0 names the rank in one line."""
    import signal

    from minisgd import runs

    out = tmp_path / "run"
    proc = _start(2, out, "--epochs", "40", "--data-parallel", "sync")
    pid = _pid_of_rank(proc, 1)
    _wait_for_checkpoint(out)
    os.kill(pid, getattr(signal, how))
    try:
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode != 0
    if how == "SIGKILL":  # mpiexec names the dead PID; if MPI told rank 0 first, rank 0 says so in one line
        ours = [ln for ln in stderr.splitlines() if ln.startswith("minisgd: error: a worker died")]
        assert f"PID {pid} " in stdout + stderr or len(ours) == 1, stdout + stderr
    else:
        ours = [ln for ln in stderr.splitlines() if ln.startswith("minisgd: error:")]
        assert len(ours) == 1 and "worker rank 1 stopped answering" in ours[0] and "holds epoch" in ours[0], stderr
    run = runs.resume_run(out)  # the last checkpoint is intact: it loads
    assert 1 <= run.start_epoch < 40
