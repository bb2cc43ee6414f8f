"""backend.map_blocks: independent blocks of work on CPU threads, with NumPy's BLAS held at one thread inside."""

import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from minisgd import backend


def _blas_threads():
    return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]


def test_results_come_back_in_the_order_of_the_blocks():
    assert backend.map_blocks(lambda block: block * block, range(20), "cpu") == [i * i for i in range(20)]


def test_blocks_run_with_one_blas_thread_and_the_blas_threads_are_restored():
    if backend.CPU_THREADS < 2:
        pytest.skip("the BLAS has one thread here: map_blocks runs the blocks one after another")
    before = _blas_threads()

    def work(block):
        time.sleep(0.01)  # long enough that the calling thread cannot take every block before a helper starts
        return _blas_threads(), threading.get_ident()

    seen = backend.map_blocks(work, range(8), "cpu")
    assert all(threads == [1] * len(before) for threads, _ in seen)
    assert len({ident for _, ident in seen} - {threading.get_ident()}) >= 1  # not on the caller's thread
    assert _blas_threads() == before


def test_an_error_in_a_block_reaches_the_caller_and_the_blas_threads_are_restored():
    before = _blas_threads()

    def work(block):
        if block == 3:
            raise ValueError("block 3 failed")
        return block

    with pytest.raises(ValueError, match="block 3 failed"):
        backend.map_blocks(work, range(6), "cpu")
    assert _blas_threads() == before


def test_the_calling_thread_takes_blocks_too_and_a_single_block_runs_with_one_blas_thread():
    def work(block):
        time.sleep(0.01)
        return threading.get_ident(), _blas_threads()

    seen = backend.map_blocks(work, range(6), "cpu")
    assert threading.get_ident() in {ident for ident, _ in seen}
    if backend.CPU_THREADS > 1:
        assert backend.map_blocks(work, range(1), "cpu") == [(threading.get_ident(), [1] * len(_blas_threads()))]


def test_after_an_error_no_block_is_still_running_and_no_new_block_starts():
    if backend.CPU_THREADS < 2:
        pytest.skip("the BLAS has one thread here: the blocks run on the caller's thread")
    finished = []

    def work(block):
        if block == 0:
            time.sleep(0.005)
            raise ValueError("block 0 failed")
        time.sleep(0.02)
        finished.append(block)

    with pytest.raises(ValueError, match="block 0 failed"):
        backend.map_blocks(work, range(40), "cpu")
    count = len(finished)
    time.sleep(0.05)
    assert len(finished) == count  # every thread had stopped when the error reached the caller
    assert count < 39  # the blocks after the failure were not started


def test_on_a_gpu_the_blocks_run_in_order_on_the_calling_thread():
    caller = threading.get_ident()
    seen = backend.map_blocks(lambda block: (block, threading.get_ident()), range(5), "cuda")
    assert seen == [(block, caller) for block in range(5)]


def test_blocks_writing_disjoint_parts_of_one_array_fill_all_of_it():
    out = np.zeros((64, 100), dtype=np.float32)
    a = np.random.default_rng(0).standard_normal((64, 50), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((50, 100), dtype=np.float32)

    def work(rows):
        np.matmul(a[rows], b, out=out[rows])

    backend.map_blocks(work, [slice(i, i + 8) for i in range(0, 64, 8)], "cpu")
    np.testing.assert_allclose(out, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_forked_child_starts_its_own_threads():
    import os

    backend.map_blocks(lambda block: block, range(4), "cpu")  # the parent's pool exists now
    pid = os.fork()
    if pid == 0:  # the child: its copy of the pool has no threads; map_blocks must not wait for them
        import signal

        signal.alarm(30)  # a child that hangs is killed, and the test fails instead of hanging
        try:
            ok = backend.map_blocks(lambda block: block + 1, range(4), "cpu") == [1, 2, 3, 4]
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize("shape_a, shape_b", [((7, 5), (5, 3)), ((3, 5), (5, 11)), ((1, 4), (4, 1)), ((0, 4), (4, 6))])
def test_matmul_on_threads_is_the_matrix_product(shape_a, shape_b):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(shape_a), rng.standard_normal(shape_b)
    expected = np.einsum("ik,kj->ij", a, b)  # no BLAS: an independent computation
    np.testing.assert_allclose(backend.matmul(a, b), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(backend.matmul(a.T.copy().T, b[:, ::1]), expected, rtol=1e-12, atol=1e-12)


def test_matmul_splits_the_product_over_map_blocks(monkeypatch):
    if backend.CPU_THREADS < 2:
        pytest.skip("the BLAS has one thread here: matmul is a @ b")
    calls = []
    map_blocks = backend.map_blocks

    def recording(work, blocks, device):
        blocks = list(blocks)
        calls.append(blocks)
        return map_blocks(lambda block: (work(block), _blas_threads())[1], blocks, device)

    monkeypatch.setattr(backend, "map_blocks", recording)
    monkeypatch.setattr(backend, "SPLIT_MACS", 1000)
    tall, wide = np.ones((64, 8)), np.ones((8, 100))
    np.testing.assert_array_equal(backend.matmul(tall, np.ones((8, 4))), np.full((64, 4), 8.0))
    np.testing.assert_array_equal(backend.matmul(np.ones((4, 8)), wide), np.full((4, 100), 8.0))
    np.testing.assert_array_equal(backend.matmul(np.ones((4, 8)), np.ones((8, 4))), np.full((4, 4), 8.0))
    # the two products of at least SPLIT_MACS multiply-adds in one part per thread; the small one in one part
    assert [len(blocks) for blocks in calls] == [backend.CPU_THREADS] * 2 + [1]


def test_freed_memory_is_reused_without_page_faults():
    """With keep_freed_memory on (Linux, glibc), a freed 16 MB array's pages serve the next one."""
    resource = pytest.importorskip("resource")
    if not backend.KEEPS_FREED_MEMORY:
        pytest.skip("not Linux with glibc: minisgd leaves malloc as it is")
    np.ones(4 * 2**20, dtype=np.float32)  # allocated, touched and freed: its pages stay in the process
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    np.ones(4 * 2**20, dtype=np.float32)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert faults < 100, f"{faults} page faults for 16 MB: the freed memory went back to the kernel"


def test_blocks_run_under_the_callers_floating_point_error_handling():
    if backend.CPU_THREADS < 2:
        pytest.skip("the BLAS has one thread here: the blocks run on the caller's thread")
    huge = np.full(4, np.finfo(np.float32).max)

    def overflow(block):
        return huge * np.float32(block + 2)

    with np.errstate(over="raise"):
        with pytest.raises(FloatingPointError):
            backend.map_blocks(overflow, range(4), "cpu")
    with np.errstate(over="ignore"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            results = backend.map_blocks(overflow, range(4), "cpu")
    assert all(np.isinf(result).all() for result in results)


def test_row_blocks_split_large_cpu_arrays_along_the_first_axis(monkeypatch):
    monkeypatch.setattr(backend, "CPU_THREADS", 2)
    large = np.zeros((5, backend.SPLIT_ELEMENTS))
    assert backend.row_blocks(large) == [slice(0, 2), slice(2, 5)]
    assert backend.row_blocks(np.zeros((5, 3))) == [...]  # small: one part, the whole array
    assert backend.row_blocks(np.zeros(())) == [...]  # a scalar has no first axis
    monkeypatch.setattr(backend, "CPU_THREADS", 1)
    assert backend.row_blocks(large) == [...]


@pytest.mark.parametrize("size, count", [(10, 3), (128, 2), (3, 5), (0, 2), (7, 1)])
def test_even_parts_cover_the_range_in_order_with_lengths_within_one(size, count):
    parts = backend.even_parts(size, count)
    covered = [i for part in parts for i in range(size)[part]]
    assert covered == list(range(size))
    assert len(parts) == min(size, count)
    lengths = [part.stop - part.start for part in parts]
    assert not lengths or max(lengths) - min(lengths) <= 1


def test_a_block_may_call_map_blocks_itself():
    """Nested calls from the pool's own threads finish (no thread waits for a helper that cannot start).

    Run in a child process: if it hung, the stuck pool thread would also hang this process's exit.
    """
    code = (
        "from minisgd import backend\n"
        "inner = lambda block: sum(backend.map_blocks(lambda i: i, range(4), 'cpu'))\n"
        "print(backend.map_blocks(inner, range(6), 'cpu'))\n"
    )
    root = Path(__file__).resolve().parent.parent
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=root)
    except subprocess.TimeoutExpired:
        pytest.fail("map_blocks inside map_blocks did not finish")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[6, 6, 6, 6, 6, 6]"
