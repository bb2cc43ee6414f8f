"""Grading a student's exercise file: each task in a child process, with a time limit, one line per task.

A task's check is a plain function ``check(student_function)`` that feeds the
student's function its cases, compares what comes back with the answer key
(minisgd itself, analytic values, finite differences) and raises

- :class:`Fail` with a one-line diagnosis: the first case that differs,
  expected against got, and the likely mistake where it is a known one;
- :class:`NotStarted` when the function still raises ``NotImplementedError``.

:func:`grade` runs every check in its own child process (forked from a server
that has already imported minisgd, so a start costs milliseconds), and stops
it after ``time_limit`` seconds: a student's infinite loop costs one task, not
the whole run. Whatever the student's code does (raise, loop, return a string,
a NaN, the wrong shape, exit the process), the task gets one line and the
grader never prints a traceback.

The helpers below (:func:`call`, :func:`as_array`, :func:`as_number`,
:func:`as_tuple`, :func:`assert_close`) are what the topic modules build their
checks from.
"""

from __future__ import annotations

import copy
import importlib.util
import io
import math
import multiprocessing
import os
import sys
import traceback
import types
import warnings
from dataclasses import dataclass
from importlib.machinery import SourceFileLoader
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

PASS, FAIL, NOT_STARTED = "pass", "fail", "not started"
DEFAULT_TIME_LIMIT = 10.0  # seconds per task; one check takes well under one second
RTOL, ATOL = 1e-6, 1e-9  # float64 inputs: a right answer agrees to ~1e-12; float32 work still passes


class Fail(Exception):
    """A wrong answer: the message is the one-line diagnosis shown to the student."""


class NotStarted(Exception):
    """The student's function still raises ``NotImplementedError`` (the stub)."""


@dataclass
class TaskResult:
    """One task's outcome: ``status`` is ``"pass"``, ``"fail"`` or ``"not started"``."""

    task: str
    status: str
    message: str = ""

    def line(self, width: int = 0) -> str:
        """``"gd_step             fail: ..."``: the line ``check`` prints."""
        text = f"{self.task:<{width}}  {self.status}"
        return f"{text}: {self.message}" if self.message else text


# ------------------------------------------------------------ helpers for checks
_student_file: str | None = None  # the file being graded, to point at its lines in a diagnosis


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_exception(error: BaseException) -> str:
    """``"ZeroDivisionError: division by zero (line 12)"``: the error and the student's line that raised it."""
    where = ""
    frames = traceback.extract_tb(error.__traceback__)
    lines = [frame.lineno for frame in frames if _student_file and frame.filename == _student_file]
    if isinstance(error, SyntaxError) and error.lineno:
        where = f" (line {error.lineno})"
        message = error.msg
    else:
        message = str(error)
        if lines:
            where = f" (line {lines[-1]})"
    name = type(error).__name__
    return _one_line(f"{name}: {message}" if message else name) + where


def call(function: Callable, *args: Any) -> Any:
    """``function(*args)`` on copies of the arguments; an exception becomes a :class:`Fail` (or NotStarted)."""
    args = copy.deepcopy(args)
    try:
        return function(*args)
    except NotImplementedError:
        raise NotStarted() from None
    except Exception as error:  # the student's bug, reported as one line
        raise Fail(f"raised {describe_exception(error)}") from None


def _kind(value: Any) -> str:
    """``"a str"``, ``"None"``, ``"an array of shape (3,)"``: what a student's value is, for a message."""
    if value is None:
        return "None"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def as_array(value: Any, what: str, shape: tuple[int, ...], finite: bool = True, hint: str = "") -> np.ndarray:
    """The student's ``value`` as a float64 array of ``shape``, or a :class:`Fail` saying what it is instead."""
    if value is None or isinstance(value, (str, bytes, dict, set)) or callable(value):
        raise Fail(f"{what} is {_kind(value)}, expected an array of shape {shape}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a complex or ragged value is an error, not a warning
            array = np.asarray(value)
            if np.iscomplexobj(array):
                raise Fail(f"{what} is complex, expected a real array of shape {shape}")
            array = array.astype(np.float64)
    except Fail:
        raise
    except Exception:
        raise Fail(f"{what} is {_kind(value)} that is not an array of numbers, expected shape {shape}") from None
    if array.shape != tuple(shape):
        transposed = " (transposed?)" if array.ndim == 2 and array.shape == tuple(shape)[::-1] else ""
        message = f"{what} has shape {array.shape}, expected {tuple(shape)}{transposed}"
        raise Fail(f"{message}: {hint}" if hint else message)
    if finite and not np.all(np.isfinite(array)):
        bad = array[~np.isfinite(array)][0]
        raise Fail(f"{what} contains {bad}: {hint}" if hint else f"{what} contains {bad}, expected finite numbers")
    return array


def as_number(value: Any, what: str, finite: bool = True) -> float:
    """The student's ``value`` as a float (a Python or NumPy number, or a 0-d array), or a :class:`Fail`."""
    if isinstance(value, np.ndarray) and value.shape != ():
        raise Fail(f"{what} is an array of shape {value.shape}, expected one number")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number, np.ndarray)):
        raise Fail(f"{what} is {_kind(value)}, expected a number")
    if np.iscomplexobj(value):
        raise Fail(f"{what} is complex, expected a real number")
    try:
        number = float(value)
    except Exception:  # a 0-d array of strings or objects
        raise Fail(f"{what} is {_kind(value)}, expected a number") from None
    if finite and not math.isfinite(number):
        raise Fail(f"{what} is {number}, expected a finite number")
    return number


def as_tuple(value: Any, what: str, names: Sequence[str]) -> tuple:
    """The student's ``value`` as a tuple of ``len(names)`` items, or a :class:`Fail` naming what was expected."""
    wanted = f"{len(names)} values ({', '.join(names)})"
    if not isinstance(value, (tuple, list)):
        raise Fail(f"{what} returned {_kind(value)}, expected {wanted}")
    if len(value) != len(names):
        raise Fail(f"{what} returned {len(value)} value{'s' if len(value) != 1 else ''}, expected {wanted}")
    return tuple(value)


def number_text(x: float) -> str:
    """A number as a student reads it: ``0.171``, ``1e-08``, ``0``."""
    return "0" if x == 0 else f"{x:.4g}"


def pair_text(got: float, expected: float) -> tuple[str, str]:
    """Both numbers with 4 significant digits, or more where 4 would print them the same."""
    for digits in (4, 7, 10, 13, 17):
        g, e = (("0" if x == 0 else f"{x:.{digits}g}") for x in (float(got), float(expected)))
        if g != e:
            break
    return g, e


def close(got: Any, expected: Any, rtol: float = RTOL, atol: float = ATOL) -> bool:
    """Whether ``got`` matches ``expected`` (same shape, within rtol·|expected| + atol·scale)."""
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape or not np.all(np.isfinite(got)):
        return False
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    return bool(np.all(np.abs(got - expected) <= rtol * np.abs(expected) + atol * scale))


def first_difference(got: np.ndarray, expected: np.ndarray, rtol: float = RTOL, atol: float = ATOL) -> tuple:
    """The index of the first entry where ``got`` and ``expected`` differ (``()`` for 0-d arrays)."""
    if got.ndim == 0:
        return ()
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    wrong = ~(np.abs(got - expected) <= rtol * np.abs(expected) + atol * scale)
    return tuple(int(i) for i in np.argwhere(wrong)[0])


def index_text(index: tuple) -> str:
    return "" if not index else "[" + ", ".join(str(i) for i in index) + "]"


def known_mistake(got: Sequence[Any], known: Iterable[tuple[str, Callable[[], Sequence[Any]]]]) -> str:
    """The hint of the first known-wrong formula whose results (computed lazily) match ``got``; ``""`` if none."""
    for hint, wrong in known:
        try:
            values = wrong()
        except Exception:  # a wrong formula that cannot even run on this case does not match
            continue
        if len(values) == len(got) and all(close(a, b) for a, b in zip(got, values)):
            return hint
    return ""


def assert_close(
    got: Sequence[np.ndarray],
    expected: Sequence[np.ndarray],
    names: Sequence[str],
    where: str = "",
    known: Iterable[tuple[str, Callable[[], Sequence[Any]]]] = (),
    before: np.ndarray | None = None,
    rtol: float = RTOL,
    atol: float = ATOL,
) -> None:
    """Raise a :class:`Fail` at the first of ``got`` that differs from ``expected``, with a known mistake's hint.

    ``got`` and ``expected`` are tuples of arrays (already checked for shape),
    named ``names``. With ``before`` (the weights before this step), the first
    value is reported as how far it *moved*: "w[1] moved by -0.171, expected -0.18".
    """
    for k, (g, e, name) in enumerate(zip(got, expected, names)):
        g, e = np.asarray(g, dtype=np.float64), np.asarray(e, dtype=np.float64)
        if close(g, e, rtol, atol):
            continue
        index = first_difference(g, e, rtol, atol)
        if k == 0 and before is not None:
            b = float(np.asarray(before, dtype=np.float64)[index])
            got_text, expected_text = pair_text(g[index] - b, e[index] - b)
            text = f"{name}{index_text(index)} moved by {got_text}, expected {expected_text}"
        else:
            got_text, expected_text = pair_text(g[index], e[index])
            text = f"{name}{index_text(index)} is {got_text}, expected {expected_text}"
        hint = known_mistake(got, known)
        message = f"{where}: {text}" if where else text
        raise Fail(f"{message}: {hint}" if hint else message)


# --------------------------------------------------------------- running a check
def judge(check: Callable[[Callable], None], function: Any) -> tuple[str, str]:
    """Run one task's ``check`` on the student's ``function``: ``(status, one-line message)``.

    Never raises: a grader bug is reported as a fail line that says so.
    """
    if not callable(function):
        return FAIL, f"is {_kind(function)}, not a function"
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check(function)
    except NotStarted:
        return NOT_STARTED, ""
    except Fail as failure:
        return FAIL, _one_line(str(failure), limit=300)
    except Exception as error:  # pragma: no cover - a bug in the grader itself, never the student's
        return FAIL, f"the grader itself failed ({describe_exception(error)}); please report it"
    return PASS, ""


def load_student_file(path: str | os.PathLike) -> Any:
    """Import the student's file as a module (any file name); exceptions propagate to the caller."""
    global _student_file
    path = str(Path(path).resolve())
    _student_file = path
    loader = SourceFileLoader("student_exercise", path)
    spec = importlib.util.spec_from_loader("student_exercise", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def _child(path: str, topic_name: str, task: str | None, connection: Any) -> None:
    """In the child process: load the file, run one task (or only the import when ``task`` is None), send back."""
    sys.stdout = sys.stderr = io.StringIO()  # a student's prints would break the one-line-per-task output
    os.environ["MINISGD_DEVICE"] = "cpu"  # the exercises are NumPy on the host, whatever the shell chose
    try:
        try:
            module = load_student_file(path)
        except BaseException as error:  # SyntaxError, an import-time exception, even sys.exit()
            connection.send((FAIL, f"cannot be imported: {describe_exception(error)}"))
            return
        if task is None:
            connection.send((PASS, ""))
            return
        from minisgd.exercises import topic

        check = dict(topic(topic_name).TASKS)[task]
        if not hasattr(module, task):
            connection.send((FAIL, f"the file defines no function {task} (was it renamed or deleted?)"))
            return
        connection.send(judge(check, getattr(module, task)))
    except BaseException as error:  # e.g. a student's SystemExit inside a task
        try:
            connection.send((FAIL, f"raised {describe_exception(error)}"))
        except Exception:
            pass
    finally:
        connection.close()


_context = None


def _process_context() -> Any:
    """A forkserver that has imported the exercises (and minisgd): safe with threads, and quick to fork from."""
    global _context
    if _context is None:
        method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        _context = multiprocessing.get_context(method)
        if method == "forkserver":
            _context.set_forkserver_preload(["minisgd.exercises"])
    return _context


def run_in_child(path: str, topic_name: str, task: str | None, time_limit: float) -> tuple[str, str]:
    """Run :func:`_child` in a fresh process; stop it after ``time_limit`` seconds. ``(status, message)``."""
    context = _process_context()
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(path, topic_name, task, send), daemon=True)
    caller_main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")  # the child needs nothing from the caller's script,
    try:                                                   # so multiprocessing must not re-run it there
        process.start()
    finally:
        sys.modules["__main__"] = caller_main
    send.close()
    try:
        if receive.poll(time_limit):
            try:
                return receive.recv()
            except (EOFError, OSError):
                process.join(1.0)
                code = process.exitcode
                return FAIL, f"the process running it ended (exit code {code}) before it returned"
        what = "importing the file" if task is None else "it"
        return FAIL, f"stopped after {time_limit:g} s: {what} took too long (an infinite loop?)"
    finally:
        receive.close()
        if process.is_alive():
            process.kill()
        process.join(5.0)


def grade(
    topic_name: str,
    path: str | os.PathLike,
    tasks: Sequence[str] | None = None,
    time_limit: float = DEFAULT_TIME_LIMIT,
) -> tuple[str, list[TaskResult]]:
    """Grade the file at ``path`` on ``topic_name``'s tasks (all, or those named): ``(import_error, results)``.

    ``import_error`` is ``""`` when the file imports, else its one line (and
    ``results`` is empty).
    """
    from minisgd.exercises import topic

    names = [name for name, _ in topic(topic_name).TASKS]
    chosen = names if tasks is None else [name for name in names if name in tasks]
    path = str(Path(path).resolve())
    status, message = run_in_child(path, topic_name, None, time_limit)
    if status != PASS:
        return message, []
    return "", [TaskResult(task, *run_in_child(path, topic_name, task, time_limit)) for task in chosen]


# ------------------------------------------------- answer keys shared by topics
def quadratic(rng: np.random.Generator, size: int = 4, condition: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """A convex quadratic loss ½ wᵀAw − bᵀw (eigenvalues of A from 1 to ``condition``): ``(A, b)``; ∇ = A w − b."""
    q, _ = np.linalg.qr(rng.standard_normal((size, size)))
    A = q @ np.diag(np.linspace(1.0, condition, size)) @ q.T
    return A, rng.standard_normal(size)


def library_gradients(forward: Callable[..., Any], dout: np.ndarray, *inputs: np.ndarray) -> tuple:
    """∂L/∂input for L = Σ forward(*inputs) · dout, by minisgd's autograd in float64: (out, grad, grad, …)."""
    from minisgd.tensor import Tensor

    tensors = [Tensor(np.array(x, dtype=np.float64), requires_grad=True, device="cpu") for x in inputs]
    out = forward(*tensors)
    (out * Tensor(dout, device="cpu")).sum().backward()
    return (out.data,) + tuple(t.grad for t in tensors)


def check_trajectory(
    student_step: Callable,
    optimizer: Callable[[list, Any], Any],
    state_keys: Sequence[str],
    names: Sequence[str],
    settings: Callable[[int, float], tuple],
    lr_schedule: Any,
    rng: np.random.Generator,
    label: str,
    known: Sequence[tuple[str, Callable]] = (),
    steps: int = 100,
    size: int = 4,
) -> None:
    """Follow the student's step and minisgd's optimizer side by side for ``steps`` updates on a quadratic.

    ``optimizer(params, lr)`` builds the library's optimizer with ``lr`` =
    ``lr_schedule`` (so the library reads lr(t) itself); the student's step is
    called as ``student_step(w, *state, grad, *settings(t, lr))`` with the
    gradient at the student's own w, and returns ``(w, *state)`` (just w when
    there is no state), compared with
    the weights and ``state_keys`` of the library after every update. Each
    ``known`` mistake is ``(hint, wrong_step)``, with ``wrong_step`` taking the
    same arguments as the student's.
    """
    from minisgd.schedules import evaluate
    from minisgd.tensor import Tensor

    A, b = quadratic(rng, size)
    w = rng.standard_normal(size)
    param = Tensor(w.copy(), requires_grad=True, device="cpu")
    library = optimizer([param], lr_schedule)
    state = [np.zeros(size) for _ in state_keys]
    for t in range(steps):
        lr = float(evaluate(lr_schedule, t))
        grad = A @ w - b
        param.grad = A @ param.data - b
        library.step()
        expected = [param.data] + [library.state[0][key] for key in state_keys]
        args = (w, *state, grad, *settings(t, lr))
        where = f"{label}, update {t + 1} of {steps} (lr {number_text(lr)})"
        returned = call(student_step, *args)
        returned = (returned,) if len(names) == 1 else as_tuple(returned, where, names)
        got = [as_array(value, f"{where}: {name}", (size,)) for value, name in zip(returned, names)]
        if not all(close(g, e) for g, e in zip(got, expected)):
            matching = [(hint, wrong) for hint, wrong in known if _matches(got, wrong, args)]
            if len(matching) > 1:  # two mistakes agree on this update: follow the student a few more
                matching = _still_matching(student_step, matching, got, A, b, t, settings, lr_schedule, names)
            mistakes = [(hint, lambda wrong=wrong, args=args: wrong(*copy.deepcopy(args))) for hint, wrong in matching]
            assert_close(got, expected, names, where, mistakes, before=w)
        w, state = got[0], got[1:]


def _matches(got: Sequence[Any], wrong: Callable, args: tuple) -> bool:
    """Whether the known-wrong step ``wrong(*args)`` returns what the student's step returned."""
    try:
        values = wrong(*copy.deepcopy(args))
        values = (values,) if len(got) == 1 and not isinstance(values, tuple) else values
        return len(values) == len(got) and all(close(g, v) for g, v in zip(got, values))
    except Exception:
        return False


def _still_matching(student_step, matching, got, A, b, t, settings, lr_schedule, names, more: int = 5) -> list:
    """Of the known mistakes matching the student at update t, those that still match over ``more`` updates."""
    from minisgd.schedules import evaluate

    w, state = got[0], list(got[1:])
    for later in range(t + 1, t + 1 + more):
        args = (w, *state, A @ w - b, *settings(later, float(evaluate(lr_schedule, later))))
        try:
            returned = call(student_step, *args)
            returned = (returned,) if len(names) == 1 else as_tuple(returned, "", names)
            got_now = [as_array(value, "", np.shape(w)) for value in returned]
        except (Fail, NotStarted):
            break
        survivors = [(hint, wrong) for hint, wrong in matching if _matches(got_now, wrong, args)]
        if not survivors:
            break
        matching = survivors
        if len(matching) == 1:
            break
        w, state = got_now[0], got_now[1:]
    return matching


def finite_differences(loss: Callable[..., float], *inputs: np.ndarray, h: float = 1e-6) -> list[np.ndarray]:
    """∂L/∂input for every input by central differences in float64: (L(x + h eᵢ) − L(x − h eᵢ)) / 2h."""
    inputs = [np.array(x, dtype=np.float64) for x in inputs]
    grads = []
    for x in inputs:
        grad = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            saved = x[i]
            x[i] = saved + h
            up = loss(*inputs)
            x[i] = saved - h
            down = loss(*inputs)
            x[i] = saved
            grad[i] = (up - down) / (2 * h)
        grads.append(grad)
    return grads
