"""minisgd: how neural networks are trained with SGD, from scratch in NumPy (and CuPy).

The pieces, in the order a student meets them:

- :class:`Tensor`, :func:`tensor` and :func:`no_grad` (``minisgd/tensor.py``): arrays that record
  the operations applied to them and back-propagate through them.
- the differentiable operations (``minisgd/ops.py``): ``exp``, ``log``, ``matmul`` …
- :func:`gradcheck` (``minisgd/gradcheck.py``): every backward against finite differences.
- ``minisgd.nn``: layers and losses; ``minisgd.models``: LeNet and a small VGG.
- ``minisgd.optim`` and ``minisgd.schedules``: SGD, momentum, Adam and the other adaptive optimizers,
  SWA, learning-rate schedules.
- ``minisgd.data`` and ``minisgd.train``: data loading and the training loop.

>>> import minisgd
>>> x = minisgd.Tensor([1.0, 2.0, 3.0], requires_grad=True)
>>> y = (x ** 2).sum()
>>> y.backward()
>>> x.grad
array([2., 4., 6.], dtype=float32)
"""

import os as _os
import signal as _signal
import sys as _sys


def _interrupted_while_starting(signum, frame):  # noqa: ARG001 (a signal handler's signature)
    """Ctrl-C while ``python -m minisgd`` imports NumPy and minisgd: one line, exit code 130, no traceback."""
    _sys.stderr.write("interrupted while starting: nothing was saved\n")
    _os._exit(130)  # nothing is open or half-written yet


def _started_as_the_command() -> bool:
    """True while ``python -m minisgd …`` imports this package (its own Ctrl-C handler applies)."""
    argv = list(getattr(_sys, "orig_argv", []))
    return "-m" in argv and argv[argv.index("-m") + 1 :][:1] == ["minisgd"]


if _started_as_the_command() and _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
    _signal.signal(_signal.SIGINT, _interrupted_while_starting)  # minisgd.cli.main restores the default

from minisgd import backend, random  # after the Ctrl-C handler, so that it covers NumPy's import
from minisgd.gradcheck import gradcheck
from minisgd.ops import (
    abs,
    clip,
    concatenate,
    exp,
    log,
    matmul,
    maximum,
    pad,
    relu,
    sigmoid,
    sqrt,
    stack,
    tanh,
    where,
)
from minisgd.tensor import Tensor, from_op, is_grad_enabled, no_grad, tensor

# ``minisgd.tensor`` is now the factory function, as ``torch.tensor`` is; ``from minisgd.tensor import
# Tensor`` still imports from the module (Python looks submodules up in sys.modules).

__version__ = "0.1.0"

__all__ = [
    "Tensor",
    "abs",
    "backend",
    "clip",
    "concatenate",
    "exp",
    "from_op",
    "gradcheck",
    "is_grad_enabled",
    "log",
    "matmul",
    "maximum",
    "no_grad",
    "pad",
    "random",
    "relu",
    "sigmoid",
    "sqrt",
    "stack",
    "tanh",
    "tensor",
    "where",
]
