"""How K workers share the global mini-batches (no MPI needed): generative tests with hypothesis.

Property: the K workers' slices of every batch, put back in rank order, are
exactly the batch one process draws (same rows, same order, same epoch), for
any data set size N, batch B and K, including a last batch that K does not
divide; ``check_batch`` refuses exactly the batches K workers cannot share.
100 cases each in CI, 2 000 with ``MINISGD_FULL=1``.
"""

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minisgd.data import DataLoader
from minisgd.distributed import WorkerSlices, check_batch, chunk_bounds

CASES = 2_000 if os.environ.get("MINISGD_FULL") == "1" else 100


@settings(max_examples=CASES, deadline=None)
@given(n=st.integers(1, 200), batch=st.integers(1, 64), k=st.integers(1, 8), seed=st.integers(0, 2**16),
       epoch=st.integers(0, 3))
def test_slices_put_together_are_the_single_process_batches(n, batch, k, seed, epoch):
    data = (np.arange(n, dtype=np.float32)[:, None], np.arange(n))
    single = DataLoader(data, batch_size=batch, shuffle=True, seed=seed)
    single.set_epoch(epoch)
    expected = [y.data for _, y in single]
    parts = []
    for rank in range(k):
        loader = DataLoader(data, batch_size=batch, shuffle=True, seed=seed)
        slices = WorkerSlices(loader, rank, k)
        slices.set_epoch(epoch)
        assert len(slices) == len(expected)
        parts.append([y.data for _, y in slices])
        assert loader.epoch == epoch + 1  # the wrapped loader counts the epoch
    for index, batch_rows in enumerate(expected):
        together = np.concatenate([parts[rank][index] for rank in range(k)])
        assert np.array_equal(together, batch_rows)
        sizes = [len(parts[rank][index]) for rank in range(k)]
        assert max(sizes) - min(sizes) <= 1  # as even as the rows allow


@settings(max_examples=CASES, deadline=None)
@given(n=st.integers(1, 500), batch=st.integers(1, 128), k=st.integers(1, 16))
def test_check_batch_refuses_exactly_what_the_workers_cannot_share(n, batch, k):
    cannot = batch % k != 0 or 0 < n % batch < k
    if cannot:
        with pytest.raises(ValueError, match="batch_size"):
            check_batch(batch, n, k)
    else:
        check_batch(batch, n, k)


@settings(max_examples=CASES, deadline=None)
@given(n=st.integers(0, 10_000), k=st.integers(1, 64))
def test_ring_chunks_partition_the_buffer(n, k):
    bounds = chunk_bounds(n, k)
    assert len(bounds) == k and bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    assert max(hi - lo for lo, hi in bounds) - min(hi - lo for lo, hi in bounds) <= 1
