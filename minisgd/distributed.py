"""SGD on many workers: K processes started by ``mpiexec``, talking through MPI (mpi4py).

This is the only module that imports mpi4py, and it does so lazily: without
mpi4py, or outside ``mpiexec``, :func:`world` is ``(0, 1)`` and everything runs
as one process. The same program runs on a laptop (``mpiexec -n 4``) and on a
cluster (``mpiexec -f hosts -n 64``, ``srun -n 64``).

What it holds:

- :func:`world` (rank, size); :func:`allreduce` (``"mpi"``: MPI's own
  Allreduce; ``"ring"``: a hand-written ring, reduce-scatter then all-gather);
  :func:`broadcast_parameters` (rank 0's weights to every worker).
- :class:`Workers`, the K processes of one training run, in four modes:

  ``sync`` / ``ring`` — **synchronous data parallelism, which is mini-batch SGD
  with the global batch B.** Every worker draws the *same* global mini-batch
  of B images that one process would draw (same seed, same order), keeps its
  slice of n_k = B/K rows (rank k: rows k·B/K … (k+1)·B/K − 1), and computes
  its gradient g_k = (1/n_k) Σ_{i in slice k} ∇ℓ_i. The all-reduce gives every
  worker

      g = Σ_k (n_k / n) · g_k = (1/n) Σ_{i in batch} ∇ℓ_i,      n = Σ_k n_k,

  the single-process gradient of the whole batch, up to the order of the float
  additions; every worker then takes the same optimizer step, so the weights
  stay identical on all workers. (The weights n_k/n also make a last batch of
  an epoch that K does not divide exact.) ``ring`` does the same with the
  hand-written ring all-reduce.

  **BatchNorm statistics are per worker**, as in PyTorch's
  DistributedDataParallel without SyncBatchNorm: in training mode each worker
  normalises its slice with the mean and variance of its own n_k = B/K images,
  not of the B images one process would see, so a network with BatchNorm
  computes a (slightly) different gradient; the running statistics are each
  worker's own too, and rank 0's are the ones evaluated and saved. Networks
  without BatchNorm (LeNet, small-vgg without ``--batch-norm``) are exact.

  ``local-sgd`` — **local SGD** (periodic model averaging): each worker steps
  on its own slice's gradient, W_k ← W_k − α g_k, and every H updates (and at
  the end of every epoch) the weights are averaged, W ← (1/K) Σ_k W_k. For
  plain SGD with momentum and weight decay the update is linear in g, so H = 1
  *is* synchronous SGD (up to rounding); larger H trades accuracy for H times
  fewer communication rounds. Momentum buffers stay each worker's own.

  ``async`` — an **asynchronous parameter server**: rank 0 holds the weights
  and the optimizer; ranks 1 … K−1 are the workers. Worker w computes the
  gradients of the global batches w−1, w−1+(K−1), … of the single-process
  sequence, pushes each one to the server with the version v of the weights it
  used, and pulls the new weights. The server applies the gradients as they
  arrive, W_{t+1} = W_t − α g(W_{t−τ}), and records the **staleness**
  τ = t − v of every gradient it applies (``Workers.staleness``). With one
  worker τ = 0 and it is the single-process run; with K−1 workers round-robin
  τ is about K−2.

Every wait for another worker is bounded (:data:`TIMEOUT`, seconds; the
environment variable ``MINISGD_WORKER_TIMEOUT`` sets it): a worker that stops
answering makes the others stop with one line naming its rank
(:class:`WorkerLost`), never a hang. ``mpiexec`` itself stops the whole run at
once when a worker process dies.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from minisgd import checks

MODES = ("sync", "ring", "local-sgd", "async")
ALGORITHMS = ("mpi", "ring")
OPS = ("mean", "sum")
TIMEOUT = float(os.environ.get("MINISGD_WORKER_TIMEOUT", "120"))
# Environment variables that MPI launchers set for each process: MPICH/Intel (PMI), Open MPI, PMIx (srun --mpi=pmix).
_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")
_RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK")
_ROLL_CALL_TAG, _GRADIENT_TAG = 9_001, 9_002


class WorkerLost(RuntimeError):
    """Another worker did not answer within :data:`TIMEOUT` seconds (it died, hangs or was stopped).

    ``lost`` lists the ranks that did not answer the roll call (as far as this rank can tell).
    """

    def __init__(self, message: str, lost: list[int]) -> None:
        super().__init__(message)
        self.lost = lost


# ------------------------------------------------------------------ the world
def launched_size() -> int:
    """How many processes the launcher started (its environment variables; 1 without a launcher).

    Read without importing mpi4py, so that a single-process run never loads MPI.
    """
    for name in _SIZE_VARIABLES:
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    if "PMIX_RANK" in os.environ and _mpi() is not None:  # PMIx names no size: ask MPI
        return _mpi().COMM_WORLD.Get_size()
    return 1


def launched_rank() -> int:
    """This process's rank according to the launcher's environment (0 without a launcher)."""
    for name in _RANK_VARIABLES:
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0


def _mpi() -> Any:
    """mpi4py's ``MPI`` module, or None when mpi4py is not installed."""
    try:
        from mpi4py import MPI
    except ImportError:
        return None
    return MPI


def _comm(comm: Any = None) -> Any:
    if comm is not None:
        return comm
    MPI = _mpi()
    return None if MPI is None else MPI.COMM_WORLD


def communicator(comm: Any = None) -> Any:
    """``comm``, else MPI's COMM_WORLD when a launcher started several processes, else None (one process)."""
    return _comm(comm) if comm is not None or launched_size() > 1 else None


def world(comm: Any = None) -> tuple[int, int]:
    """``(rank, size)`` of this process among the K = size workers; ``(0, 1)`` without mpi4py or mpiexec."""
    comm = communicator(comm)
    if comm is None:
        return 0, 1
    return comm.Get_rank(), comm.Get_size()


def gather_pids(comm: Any = None) -> list[int]:
    """Every rank's process id, in rank order (on every worker)."""
    comm = communicator(comm)
    if comm is None:
        return [os.getpid()]
    return comm.allgather(os.getpid())


# ------------------------------------------------------------ bounded waits
def _wait(requests: Sequence[Any], comm: Any, what: str, timeout: float | None = None,
          statuses: list[Any] | None = None) -> None:
    """Wait until every MPI request completes, at most ``timeout`` seconds; else :class:`WorkerLost`.

    The requests are polled, sleeping a little longer each time (up to 1 ms),
    so that an oversubscribed machine keeps its cores for the workers.
    """
    MPI = _mpi()
    deadline = time.monotonic() + (TIMEOUT if timeout is None else timeout)
    pause = 0.0
    requests = list(requests)
    while True:
        try:
            if MPI.Request.Testall(requests, statuses):
                return
        except MPI.Exception as error:  # MPI saw a peer die before mpiexec stopped this process
            reason = " ".join(error.Get_error_string().split())[:200]
            raise WorkerLost(f"a worker died: MPI reports {reason!r} in {what}", []) from None
        if time.monotonic() > deadline:
            for request in requests:
                if request != MPI.REQUEST_NULL:
                    try:
                        request.Cancel()
                    except MPI.Exception:
                        pass
            raise WorkerLost(*_roll_call(comm, what, TIMEOUT if timeout is None else timeout))
        time.sleep(pause)
        pause = min(2 * pause + 1e-5, 1e-3)


def _roll_call(comm: Any, what: str, timeout: float) -> tuple[str, list[int]]:
    """After a timeout: find out which ranks still answer; the one-line explanation naming the others.

    Every rank that times out reports to rank 0 with a synchronous send (it
    completes only when rank 0 receives it); rank 0 collects the reports for a
    short grace period and names the ranks that never reported.
    """
    rank, size = comm.Get_rank(), comm.Get_size()
    grace = min(max(timeout, 1.0), 10.0)
    deadline = time.monotonic() + grace
    if rank == 0:
        buffers = {source: np.zeros(1, dtype=np.int64) for source in range(1, size)}
        pending = {source: comm.Irecv(buffers[source], source=source, tag=_ROLL_CALL_TAG) for source in buffers}
        while pending and time.monotonic() < deadline:
            pending = {source: request for source, request in pending.items() if not request.Test()}
            time.sleep(1e-3)
        lost = sorted(pending)
    else:
        request = comm.Issend(np.array([rank], dtype=np.int64), dest=0, tag=_ROLL_CALL_TAG)
        while not request.Test() and time.monotonic() < deadline:
            time.sleep(1e-3)
        lost = [] if request.Test() else [0]
    names = ", ".join(str(r) for r in lost) or "unknown (every rank answered the roll call)"
    plural = "s" if len(lost) > 1 else ""
    return (f"worker rank{plural} {names} stopped answering: rank {rank} waited {timeout:g} s in {what} "
            f"(set MINISGD_WORKER_TIMEOUT to wait longer)"), lost


def abort(message: str, comm: Any = None, code: int = 1) -> None:
    """Print ``message`` as one line (rank 0, or the rank that found the problem) and stop every worker."""
    print(f"minisgd: error: {message}", file=sys.stderr, flush=True)
    comm = _comm(comm)
    if comm is not None and comm.Get_size() > 1:
        time.sleep(0.5)  # mpiexec forwards the line before Abort tears the job down (it was lost 1 run in 6)
        comm.Abort(code)
    raise SystemExit(code)


# --------------------------------------------------------------- all-reduce
def _flatten(arrays: Sequence[Any]) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    from minisgd.backend import to_numpy

    hosts = [np.asarray(to_numpy(a)) for a in arrays]
    dtype = np.result_type(*hosts) if hosts else np.float64
    flat = np.concatenate([h.ravel() for h in hosts]).astype(dtype, copy=False) if hosts else np.zeros(0)
    return np.ascontiguousarray(flat), [h.shape for h in hosts]


def _unflatten(flat: np.ndarray, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    out, start = [], 0
    for shape in shapes:
        size = int(np.prod(shape, dtype=np.int64))
        out.append(flat[start:start + size].reshape(shape))
        start += size
    return out


def _load_flat(params: Sequence[Any], flat: np.ndarray, attribute: str) -> None:
    """Write the consecutive pieces of ``flat`` into each parameter's ``data`` or ``grad`` (shape, dtype, device)."""
    from minisgd.backend import get_array_module

    for p, piece in zip(params, _unflatten(flat, [p.data.shape for p in params])):
        setattr(p, attribute, get_array_module(p.data).asarray(piece.astype(p.data.dtype)))


def chunk_bounds(n: int, size: int) -> list[tuple[int, int]]:
    """The K = ``size`` chunks of a flat buffer of n numbers: chunk c is [c·n//K, (c+1)·n//K) (some empty if n < K)."""
    return [(c * n // size, (c + 1) * n // size) for c in range(size)]


def ring_allreduce(flat: np.ndarray, comm: Any, timeout: float | None = None) -> np.ndarray:
    """The sum over the K workers of ``flat``, by a ring: a reduce-scatter, then an all-gather.

    The buffer of n numbers is cut into K chunks (:func:`chunk_bounds`). Worker r
    sends to its right neighbour r+1 and receives from its left neighbour r−1
    (mod K), one chunk at a time, with a send-receive (MPI's Sendrecv, written as
    a nonblocking Isend + Irecv pair so that the wait for the neighbour is bounded):

    - reduce-scatter, steps s = 0 … K−2: send chunk (r − s) mod K, receive chunk
      (r − s − 1) mod K and add it into the own copy. After K−1 steps worker r
      holds the complete sum of chunk (r + 1) mod K.
    - all-gather, steps s = 0 … K−2: send chunk (r + 1 − s) mod K, receive chunk
      (r − s) mod K and overwrite the own copy with it.

    Each worker sends 2(K−1) chunks of n/K numbers: **2(K−1)/K · n numbers per
    worker**, below 2n whatever K, which is why the ring is bandwidth-optimal.
    With the α–β model (a message of m bytes costs α + β·m: α the latency, β
    the time per byte) its time is

        T_ring(n) = 2(K−1)·α + 2(K−1)/K · n·β      (n in bytes),

    the bandwidth term nearly constant in K, the latency term growing with K.
    Every worker ends with the same numbers, bit for bit (each chunk is summed
    once, in one order, then copied).
    """
    rank, size = comm.Get_rank(), comm.Get_size()
    out = np.array(flat, copy=True)
    if size == 1:
        return out
    bounds = chunk_bounds(out.size, size)
    right, left = (rank + 1) % size, (rank - 1) % size
    largest = max(hi - lo for lo, hi in bounds)
    incoming = np.empty(largest, dtype=out.dtype)

    def exchange(send_chunk: int, receive_chunk: int, step: str) -> np.ndarray:
        lo, hi = bounds[send_chunk]
        r_lo, r_hi = bounds[receive_chunk]
        received = incoming[:r_hi - r_lo]
        requests = [comm.Irecv(received, source=left, tag=_GRADIENT_TAG),
                    comm.Isend(np.ascontiguousarray(out[lo:hi]), dest=right, tag=_GRADIENT_TAG)]
        _wait(requests, comm, f"the ring all-reduce ({step})", timeout)
        return received

    for s in range(size - 1):  # reduce-scatter
        receive_chunk = (rank - s - 1) % size
        received = exchange((rank - s) % size, receive_chunk, "reduce-scatter")
        lo, hi = bounds[receive_chunk]
        out[lo:hi] += received
    for s in range(size - 1):  # all-gather
        receive_chunk = (rank - s) % size
        received = exchange((rank + 1 - s) % size, receive_chunk, "all-gather")
        lo, hi = bounds[receive_chunk]
        out[lo:hi] = received
    return out


def allreduce(
    arrays: Sequence[Any],
    op: str = "mean",
    algorithm: str = "mpi",
    *,
    comm: Any = None,
    timeout: float | None = None,
) -> list[np.ndarray]:
    """Combine each array over the K workers: its sum, or its mean (sum / K); every worker gets the result.

    The arrays are flattened into one buffer (one message), reduced, and cut
    back into their shapes (NumPy arrays, in the buffer's common dtype).
    ``algorithm="mpi"`` calls MPI's Allreduce (nonblocking, polled with a
    deadline); ``"ring"`` the hand-written :func:`ring_allreduce`, whose
    docstring gives the 2(K−1)/K · n numbers sent per worker and the α–β cost
    T = 2(K−1)·α + 2(K−1)/K · n·β. Both give the same numbers up to the order
    of the additions: bit-equal for integer-valued floats, within rounding
    otherwise. Outside mpiexec (K = 1) the arrays come back as copies.
    """
    checks.choice("allreduce", "op", op, OPS)
    checks.choice("allreduce", "algorithm", algorithm, ALGORITHMS)
    flat, shapes = _flatten(arrays)
    comm = communicator(comm)
    size = 1 if comm is None else comm.Get_size()
    if size == 1:
        total = flat.copy()
    elif algorithm == "ring":
        total = ring_allreduce(flat, comm, timeout)
    else:
        MPI = _mpi()
        total = np.empty_like(flat)
        _wait([comm.Iallreduce(flat, total, op=MPI.SUM)], comm, "MPI's all-reduce", timeout)
    if op == "mean":
        total = total / size
    return _unflatten(total, shapes)


def broadcast(value: Any, comm: Any = None, root: int = 0) -> Any:
    """Rank ``root``'s JSON-serialisable value (a dict of scores) on every worker, with bounded waits."""
    import json

    comm = communicator(comm)
    if comm is None or comm.Get_size() == 1:
        return value
    payload = np.frombuffer(json.dumps(value).encode(), dtype=np.uint8) if comm.Get_rank() == root else None
    length = np.array([0 if payload is None else payload.size], dtype=np.int64)
    _wait([comm.Ibcast(length, root=root)], comm, "a broadcast from rank 0")
    buffer = payload.copy() if payload is not None else np.empty(int(length[0]), dtype=np.uint8)
    _wait([comm.Ibcast(buffer, root=root)], comm, "a broadcast from rank 0")
    return json.loads(buffer.tobytes().decode())


def broadcast_parameters(model: Any, comm: Any = None, root: int = 0) -> None:
    """Copy rank ``root``'s parameters and buffers into every worker's ``model`` (at the start of a run).

    All workers build the model from the same seed, so this changes nothing in
    a correct program; it guarantees that they start from the same weights.
    """
    comm = communicator(comm)
    if comm is None or comm.Get_size() == 1:
        return
    state = {name: np.ascontiguousarray(array) for name, array in model.state_dict().items()}
    for name, array in state.items():
        _wait([comm.Ibcast(array, root=root)], comm, f"broadcast_parameters ({name})")
    model.load_state_dict(state)


# --------------------------------------------------------------- the loader
class WorkerSlices:
    """This worker's part of every global mini-batch of ``loader`` (which draws exactly what one process draws).

    ``mode="slice"``: rows [k·n//K, (k+1)·n//K) of each batch of n rows
    (synchronous and local SGD). ``mode="round-robin"``: whole batches
    b = k, k + K, k + 2K, … of the epoch (the asynchronous workers).
    ``len()`` is the number of global batches; the epoch and seed are the
    wrapped loader's, so checkpoints and resume see the single-process loader.
    """

    def __init__(self, loader: Any, rank: int, size: int, mode: str = "slice") -> None:
        self.loader, self.rank, self.size, self.mode = loader, rank, size, mode

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str) -> Any:  # batch_size, seed, epoch, set_epoch, state_dict …
        return getattr(self.__dict__["loader"], name)

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        from minisgd.tensor import Tensor

        for index, (x, y) in enumerate(self.loader):
            if self.mode == "round-robin":
                if index % self.size == self.rank:
                    yield x, y
                continue
            n = len(x)
            lo, hi = self.rank * n // self.size, (self.rank + 1) * n // self.size
            yield Tensor(x.data[lo:hi], device=x.device), Tensor(y.data[lo:hi], device=y.device)


def check_batch(batch_size: int, n_train: int, workers: int, where: str = "--batch-size") -> None:
    """Refuse a global batch B that K workers cannot share: B % K != 0, or a last batch with fewer than K images."""
    name = where.lstrip("-").replace("-", "_")
    if batch_size % workers:
        raise ValueError(
            f"{name} must be divisible by the number of workers K = {workers} "
            f"(each takes B/K images of the global batch B); got {batch_size}"
        )
    last = n_train % batch_size
    if 0 < last < workers:
        raise ValueError(
            f"{name}: the last mini-batch of each epoch holds {last} image(s) "
            f"({n_train} training images), fewer than the K = {workers} workers; choose a batch size that "
            f"leaves 0 or at least {workers} images for it; got {batch_size}"
        )


# --------------------------------------------------------------- the workers
class Workers:
    """The K processes of one training run and how they combine their work (see the module docstring).

    ``mode``: ``"sync"``, ``"ring"``, ``"local-sgd"`` (average every
    ``sync_every`` = H updates) or ``"async"``. :func:`minisgd.train.fit` calls
    :meth:`backward` instead of ``loss.backward()``, :meth:`after_step` after
    each update and :meth:`evaluate` for the test scores; :meth:`fit` is the
    training loop to call (``train.fit`` itself, or the parameter server's).
    ``rounds`` counts the communication rounds that carried gradients or
    weights; ``staleness`` (async) the τ of every gradient the server applied.
    """

    def __init__(self, mode: str = "sync", *, sync_every: int = 1, comm: Any = None) -> None:
        self.mode = checks.choice("Workers", "mode", mode, MODES)
        self.sync_every = checks.integer("Workers", "sync_every", sync_every, low=1)
        self.comm = communicator(comm)
        self.rank, self.size = world(self.comm)
        self.rounds = 0
        self.staleness: list[int] = []
        self.steps_per_epoch = 0

    @property
    def is_writer(self) -> bool:
        """Only rank 0 prints, draws the progress bar and writes the run's files."""
        return self.rank == 0

    @property
    def algorithm(self) -> str:
        return "ring" if self.mode == "ring" else "mpi"

    def shard(self, loader: Any) -> Any:
        """The loader this worker trains on: its slices of every global batch (async: its batches)."""
        self.steps_per_epoch = len(loader)
        if self.size == 1:
            return loader
        if self.mode == "async":
            return WorkerSlices(loader, self.rank - 1, self.size - 1, "round-robin") if self.rank else loader
        return WorkerSlices(loader, self.rank, self.size)

    # ---------------------------------------------------- hooks of train.fit
    def backward(self, optimizer: Any, loss: Any, correct: int, count: int) -> tuple[float, int, int]:
        """Back-propagate this worker's slice, combine over the workers: (global loss, correct, batch size).

        ``sync``/``ring``: one all-reduce carries Σ_k n_k·g_k for every
        parameter and the three numbers (Σ n_k·loss_k, Σ correct_k, Σ n_k);
        each gradient then becomes (1/n) Σ_k n_k g_k, the batch's gradient.
        ``local-sgd``: the gradient stays local; only the three numbers are
        summed (so all workers agree on the loss, and on stopping if it diverges).
        """
        optimizer.zero_grad()
        loss.backward()
        loss_value = float(loss.item())
        if self.size == 1:
            return loss_value, correct, count
        from minisgd.backend import to_numpy

        params = [p for group in optimizer.param_groups for p in group["params"]]
        stats = np.array([loss_value * count, correct, count], dtype=np.float64)
        if self.mode == "local-sgd":
            (total,) = allreduce([stats], "sum", comm=self.comm)
            return float(total[0] / total[2]), int(round(total[1])), int(round(total[2]))
        with_grad = [p for p in params if p.grad is not None]
        grads = [to_numpy(p.grad) for p in with_grad]
        dtype = grads[0].dtype  # the message travels in the gradients' dtype (float32 in training)
        flat = np.concatenate([np.asarray(g, dtype=dtype).ravel() * dtype.type(count) for g in grads]
                              + [stats.astype(dtype)])
        (total,) = allreduce([flat], "sum", self.algorithm, comm=self.comm)
        self.rounds += 1
        n = float(total[-1])
        _load_flat(with_grad, total[:-3] / dtype.type(n), "grad")
        loss_sum, correct_sum = float(total[-3]), float(total[-2])
        return loss_sum / n, int(round(correct_sum)), int(round(n))

    def after_step(self, model: Any, t: int) -> None:
        """``local-sgd``: after every H-th update (and an epoch's last), W ← (1/K) Σ_k W_k."""
        if self.mode != "local-sgd" or self.size == 1:
            return
        if t % self.sync_every and (not self.steps_per_epoch or t % self.steps_per_epoch):
            return
        params = list(model.parameters())
        (averaged,) = allreduce([_flatten([p.data for p in params])[0]], "mean", comm=self.comm)
        _load_flat(params, averaged, "data")
        self.rounds += 1

    def evaluate(self, model: Any, loader: Any, loss_fn: Callable) -> dict[str, float]:
        """Rank 0's test scores, on every worker (its BatchNorm statistics are the ones saved)."""
        from minisgd.train import evaluate

        scores = evaluate(model, loader, loss_fn) if self.rank == 0 else None
        return broadcast(scores, self.comm)

    # --------------------------------------------------------- the training
    def fit(self, model: Any, train_loader: Any, optimizer: Any, **options: Any) -> Any:
        """Train as :func:`minisgd.train.fit` does, on K workers (async: rank 0 serves, the others compute)."""
        from minisgd.train import fit

        broadcast_parameters(model, self.comm)
        if self.mode != "async" or self.size == 1:
            return fit(model, train_loader, optimizer, workers=self, **options)
        if self.rank == 0:
            return self._serve(model, optimizer, **options)
        return self._work(model, train_loader, options)

    def _serve(self, model: Any, optimizer: Any, *, epochs: int, history: Any = None, start_epoch: int = 0,
               test_loader: Any = None, loss_fn: Callable | None = None, on_epoch_end: Callable | None = None,
               log: Callable | None = None, clip_grad_norm: float | None = None, **ignored: Any) -> Any:
        """The parameter server: apply each pushed gradient, W_{t+1} = W_t − α g(W_{t−τ}); send back the weights."""
        from minisgd.nn.utils import clip_grad_norm_
        from minisgd.train import History, _default_loss, evaluate

        MPI = _mpi()
        history = history if history is not None else History()
        params = list(model.parameters())
        n_weights = sum(int(p.data.size) for p in params)
        buffer = np.empty(n_weights + 2, dtype=np.float64)  # gradient, version, loss
        version = len(history.step_loss)
        for epoch in range(start_epoch + 1, epochs + 1):
            started = time.perf_counter()
            loss_sum = 0.0
            for _ in range(self.steps_per_epoch):
                status = MPI.Status()
                request = self.comm.Irecv(buffer, source=MPI.ANY_SOURCE, tag=epoch)
                _wait([request], self.comm, "the parameter server (waiting for a gradient)", statuses=[status])
                worker = status.Get_source()
                lr = optimizer.lr
                self.staleness.append(version - int(buffer[-2]))
                _load_flat(params, buffer[:n_weights], "grad")
                if clip_grad_norm is not None:
                    clip_grad_norm_(params, clip_grad_norm)
                optimizer.step()
                version += 1
                history.step_loss.append(float(buffer[-1]))
                history.step_lr.append(float(lr))
                loss_sum += float(buffer[-1])
                weights, _ = _flatten([p.data for p in params])
                reply = np.concatenate([weights.astype(np.float64), [version]])
                _wait([self.comm.Isend(reply, dest=worker, tag=epoch)], self.comm, "the parameter server (reply)")
            seconds = time.perf_counter() - started
            record = {"epoch": epoch, "train_loss": loss_sum / self.steps_per_epoch, "train_acc": float("nan"),
                      "seconds": seconds, "images_per_second": float("nan"),
                      "mean_staleness": float(np.mean(self.staleness[-self.steps_per_epoch:]))}
            if test_loader is not None:
                scores = evaluate(model, test_loader, loss_fn or _default_loss())
                record.update(test_loss=scores["loss"], test_acc=scores["acc"])
            history.epochs.append(record)
            if log is not None:
                log(f"epoch {epoch}: train_loss={record['train_loss']:.4f}"
                    + (f" test_loss={record['test_loss']:.4f} test_acc={record['test_acc']:.4f}"
                       if test_loader is not None else "")
                    + f" (mean staleness τ={record['mean_staleness']:.2f}, {seconds:.1f}s)")
            if on_epoch_end is not None:
                on_epoch_end(epoch, history)
        return history

    def _work(self, model: Any, train_loader: Any, options: dict[str, Any]) -> Any:
        """An asynchronous worker: gradient of its next batch at the weights it has, push, pull the new weights."""
        from minisgd.backend import to_numpy
        from minisgd.train import History, _default_loss, _loss_and_correct

        loss_fn = options.get("loss_fn") or _default_loss()
        history = options.get("history") if options.get("history") is not None else History()
        params = list(model.parameters())
        n_weights = sum(int(p.data.size) for p in params)
        reply = np.empty(n_weights + 1, dtype=np.float64)
        version = len(history.step_loss)
        for epoch in range(options.get("start_epoch", 0) + 1, options["epochs"] + 1):
            model.train()
            for x, y in train_loader:
                _, loss, _ = _loss_and_correct(model, loss_fn, x, y)
                for p in params:
                    p.grad = None
                loss.backward()
                grads = [np.asarray(to_numpy(p.grad), dtype=np.float64).ravel() for p in params]
                message = np.concatenate(grads + [np.array([version, loss.item()], dtype=np.float64)])
                _wait([self.comm.Isend(message, dest=0, tag=epoch)], self.comm, "an async worker (push)")
                _wait([self.comm.Irecv(reply, source=0, tag=epoch)], self.comm, "an async worker (pull)")
                version = int(reply[-1])
                _load_flat(params, reply[:-1], "data")
        return history
