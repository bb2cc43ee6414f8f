"""``python -m minisgd exercise``: the library's own solutions pass, stubs are "not started", and whatever a
student's file does (raise, loop forever, return garbage, fail to import) the grader answers one line per task.

The known-wrong solutions and their diagnoses are in ``test_exercises_mutants.py``.
"""

import math
import os
import re

import numpy as np
import pytest
from exercise_solutions import SOLUTIONS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minisgd import Tensor, cli, exercises, nn, optim
from minisgd.exercises import backprop, ensembles, grading
from minisgd.lr_finder import lr_range_test

FULL = os.environ.get("MINISGD_FULL") == "1"
LINE = re.compile(r"^(\w+) +(pass|fail|not started)(: .+)?$")


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("topic", exercises.TOPIC_NAMES)
def test_the_library_built_solution_passes_every_task(tmp_path, capsys, topic):
    path = tmp_path / f"{topic}.py"
    path.write_text(SOLUTIONS[topic])
    code, out, err = run(capsys, "exercise", "check", topic, "--file", str(path))
    lines = out.strip().splitlines()
    tasks = exercises.task_names(topic)
    assert code == 0, out
    assert err == ""
    assert lines[0] == f"grading {path} (topic {topic}, lectures {', '.join(exercises.topic(topic).LECTURES)})"
    assert [LINE.match(line).group(1, 2) for line in lines[1:-1]] == [(task, "pass") for task in tasks]
    assert lines[-1] == f"{len(tasks)} of {len(tasks)} task{'s' if len(tasks) > 1 else ''} pass"


def test_a_fresh_stub_is_not_started_on_every_task(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for topic in exercises.TOPIC_NAMES:
        code, out, _ = run(capsys, "exercise", "start", topic)
        assert code == 0 and f"wrote exercises/{topic}.py" in out
        stub = (tmp_path / "exercises" / f"{topic}.py").read_text()
        assert "\nimport minisgd" not in stub and "\nfrom minisgd" not in stub and f"exercise check {topic}" in stub
        code, out, _ = run(capsys, "exercise", "check", topic)
        assert code == 1
        lines = out.strip().splitlines()[1:-1]
        assert lines == [f"{task:<{max(map(len, exercises.task_names(topic)))}}  not started"
                         for task in exercises.task_names(topic)]


def test_list_names_every_topic_its_tasks_and_lectures(capsys):
    code, out, _ = run(capsys, "exercise", "list")
    assert code == 0
    assert "sgd        lectures 01_gd_vs_sgd, 02_minibatch, 11_many_workers: gd_step, minibatch_gradient" in out
    assert "momentum   lectures 03_momentum: heavy_ball_step, pytorch_momentum_step, nesterov_step" in out
    assert "schedules  lectures 04_lr_decay, 05_sgdr:" in out
    assert "backprop   lectures 07_cifar10_cnn, 08_loss_landscape:" in out
    assert "cnn        lectures 07_cifar10_cnn:" in out
    assert "adaptive   lectures 06_choosing_hyperparameters, 09_flat_sharp_measured:" in out
    assert "ensembles  lectures 06_choosing_hyperparameters, 10_snapshot_ensembles_swa:" in out


def test_a_partly_wrong_file_gets_one_line_per_task_and_exit_code_1(tmp_path, capsys):
    path = tmp_path / "momentum.py"
    path.write_text(exercises.topic("momentum").STUB + '''
def heavy_ball_step(w, v, grad, lr, beta):
    v = beta * v + lr * grad
    return w - v, v


def pytorch_momentum_step(w, buf, grad, lr, momentum):
    buf = momentum * buf + lr * grad
    return w - buf, buf
''')
    code, out, _ = run(capsys, "exercise", "check", "momentum", "--file", str(path))
    lines = out.strip().splitlines()
    assert code == 1
    assert lines[1] == "heavy_ball_step        pass"
    assert lines[2].startswith("pytorch_momentum_step  fail: constant lr 0.05, momentum 0.9, update 1 of 100")
    assert "PyTorch keeps the rate out of the buffer" in lines[2]
    assert lines[3] == "nesterov_step          not started"
    assert lines[4] == "1 of 3 tasks pass"


# ------------------------------------------------------ what a student's file may do
BROKEN = [
    ("raises", "def gd_step(w, grad, lr):\n    return w - lr * grad * (1 / 0)\n",
     r"raised ZeroDivisionError: division by zero \(line \d+\)$"),
    ("wrong shape", "def gd_step(w, grad, lr):\n    return (w - lr * grad)[:-1]\n",
     r"w_new for w of shape \(5,\) has shape \(4,\), expected \(5,\)$"),
    ("returns None", "def gd_step(w, grad, lr):\n    w = w - lr * grad\n", r"is None, expected an array of shape"),
    ("returns a string", "def gd_step(w, grad, lr):\n    return 'w'\n", r"is a str, expected an array of shape"),
    ("returns NaN", "import numpy as np\ndef gd_step(w, grad, lr):\n    return w * np.nan\n", r"contains nan"),
    ("loops forever", "def gd_step(w, grad, lr):\n    while True:\n        pass\n",
     r"^stopped after 1\.5 s: it took too long \(an infinite loop\?\)$"),
    ("exits the process", "import os\ndef gd_step(w, grad, lr):\n    os._exit(3)\n",
     r"^the process running it ended \(exit code 3\) before it returned$"),
    ("calls sys.exit", "import sys\ndef gd_step(w, grad, lr):\n    sys.exit('bye')\n", r"^raised SystemExit: bye"),
    ("prints", "def gd_step(w, grad, lr):\n    print('debug', w)\n    return w - lr * grad\n", None),
    ("is not a function", "gd_step = 3\n", r"^is an int, not a function$"),
]


@pytest.mark.parametrize("what, code, expected", BROKEN, ids=[b[0] for b in BROKEN])
def test_whatever_the_student_code_does_the_task_gets_one_line(tmp_path, capsys, what, code, expected):
    path = tmp_path / "sgd.py"
    path.write_text(SOLUTIONS["sgd"] + "\n" + code)
    status, out, err = run(capsys, "exercise", "check", "sgd", "--file", str(path), "--time-limit", "1.5")
    lines = out.strip().splitlines()
    assert len(lines) == 4 and err == "", out + err  # header, two tasks, summary: no traceback, no prints
    match = LINE.match(lines[1])
    assert match and match.group(1) == "gd_step", lines[1]
    if expected is None:
        assert match.group(2) == "pass" and status == 0
    else:
        assert match.group(2) == "fail" and status == 1
        assert re.search(expected, match.group(3)[2:]), lines[1]
    assert LINE.match(lines[2]).group(1, 2) == ("minibatch_gradient", "pass")


@pytest.mark.parametrize("code, expected", [
    ("def gd_step(w, grad, lr)\n    return w\n", r"cannot be imported: SyntaxError: expected ':' \(line 1\)$"),
    ("import numpy as np\nraise RuntimeError('boom')\n", r"cannot be imported: RuntimeError: boom \(line 2\)$"),
    ("import sys\nsys.exit(1)\n", r"cannot be imported: SystemExit: 1 \(line 2\)$"),
    ("while True:\n    pass\n", r"stopped after 1\.5 s: importing the file took too long"),
])
def test_a_file_that_cannot_be_imported_gets_one_line(tmp_path, capsys, code, expected):
    path = tmp_path / "sgd.py"
    path.write_text(code)
    status, out, err = run(capsys, "exercise", "check", "sgd", "--file", str(path), "--time-limit", "1.5")
    lines = out.strip().splitlines()
    assert status == 1 and err == "" and len(lines) == 2, out
    assert lines[1].startswith(str(path)) and re.search(expected, lines[1]), lines[1]


def test_a_missing_function_is_named(tmp_path):
    path = tmp_path / "sgd.py"
    path.write_text("import numpy as np\n")
    _, results = grading.grade("sgd", path, tasks=["gd_step"])
    assert results[0].message == "the file defines no function gd_step (was it renamed or deleted?)"


# ------------------------------------------------------------------ arguments
@pytest.mark.parametrize("argv, message", [
    (["exercise"], "the following arguments are required: {list,start,check}"),
    (["exercise", "check", "optimizers"], "argument TOPIC: invalid choice: 'optimizers'"),
    (["exercise", "start"], "the following arguments are required: TOPIC"),
    (["exercise", "check", "sgd", "--time-limit", "0"], "argument --time-limit: must be a number in [0.1, 3600]"),
    # a limit beyond what the system's clocks take was an OverflowError (found by the long CLI fuzz)
    (["exercise", "check", "sgd", "--time-limit", "2147484"], "argument --time-limit: must be a number in [0.1, 3600]"),
    (["exercise", "list", "--file", "x.py"], "unrecognized arguments: --file x.py"),
])
def test_bad_arguments_get_one_line_and_exit_code_2(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err, err


def test_start_never_overwrites_and_refuses_odd_paths(tmp_path, capsys):
    target = tmp_path / "mine.py"
    code, _, _ = run(capsys, "exercise", "start", "cnn", "--file", str(target))
    assert code == 0 and target.read_text() == exercises.topic("cnn").STUB
    target.write_text("# my work\n")
    code, out, err = run(capsys, "exercise", "start", "cnn", "--file", str(target))
    assert code == 2 and out == "" and "already exists; start never overwrites" in err and err.count("\n") == 1
    assert target.read_text() == "# my work\n"
    code, _, err = run(capsys, "exercise", "start", "cnn", "--file", str(tmp_path))
    assert code == 2 and "(a folder)" in err and err.count("\n") == 1
    code, _, err = run(capsys, "exercise", "start", "cnn", "--file", str(target / "inner.py"))
    assert code == 2 and f"{target} is a file, so" in err and err.count("\n") == 1
    code, _, err = run(capsys, "exercise", "check", "cnn", "--file", str(tmp_path / "none.py"))
    assert code == 2 and "does not exist; create it with `python -m minisgd exercise start cnn`" in err
    code, _, err = run(capsys, "exercise", "check", "cnn", "--file", str(tmp_path))
    assert code == 2 and "(a folder)" in err
    deep = tmp_path / "a" / "b" / "c.py"
    assert run(capsys, "exercise", "start", "sgd", "--file", str(deep))[0] == 0 and deep.is_file()


# ------------------------------------------------------------------ answer keys
def test_the_suggestion_rule_is_the_one_lr_range_test_applies():
    """ensembles.suggestion (the grader's key) against minisgd's own lr_range_test on a real model."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = nn.Linear(5, 2)
    batches = [(Tensor(x[i:i + 16]), y[i:i + 16]) for i in range(0, 64, 16)]
    for steps in (15, 60):  # below and above the 20 points where the first 10 are left out
        result = lr_range_test(model, optim.SGD(model.parameters(), lr=0.1), batches, start_lr=1e-4,
                               end_lr=10.0, steps=steps)
        assert ensembles.suggestion(result.lrs, result.losses) == pytest.approx(result.suggested_lr, rel=1e-12)
        assert np.allclose(ensembles.smoothed_losses(result.losses), result.smoothed, rtol=1e-12)


def test_analytic_values_the_grader_relies_on():
    """Values a student can verify by hand, through the same library calls the grader makes."""
    from minisgd import schedules

    assert schedules.cosine(0.1, 10)(5) == pytest.approx(0.05)  # ½ lr0 at T/2
    assert schedules.sgdr(1.0, 1, 3)(121) == 1.0  # the restart a floating logarithm misses
    assert schedules.warmup(schedules.cosine(0.1, 20), 5)(5) == pytest.approx(0.1)
    loss, dlogits = backprop._library_cross_entropy(np.zeros((3, 4)), np.array([0, 1, 2]))
    assert loss == pytest.approx(math.log(4))  # uniform logits: every class has probability 1/4
    assert np.allclose(dlogits, (0.25 - np.eye(4)[[0, 1, 2]]) / 3)


# ------------------------------------------------------------------ generative
def _garbage():
    shapes = st.lists(st.integers(0, 4), min_size=0, max_size=4).map(tuple)
    floats = st.floats(allow_nan=True, allow_infinity=True)
    arrays = st.builds(lambda shape, fill: np.full(shape, fill), shapes, floats)
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), floats, st.text(max_size=5),
                        st.complex_numbers(), st.just(object()), st.just(print), st.just(np.float32("nan")),
                        st.just(np.array("abc")), st.just(np.array(None, dtype=object)), st.just(np.array(0.1)),
                        st.just(np.array([[1, 2], [3]], dtype=object)), st.just(np.int64(3)))
    leaf = st.one_of(scalars, arrays)
    return st.recursive(leaf, lambda inner: st.one_of(st.lists(inner, max_size=4), st.tuples(inner, inner),
                                                      st.tuples(inner, inner, inner),
                                                      st.dictionaries(st.text(max_size=2), inner, max_size=2)),
                        max_leaves=6)


TASKS = [(topic, task, check) for topic in exercises.TOPIC_NAMES for task, check in exercises.topic(topic).TASKS]


@settings(max_examples=300 if FULL else 60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(garbage=_garbage(), which=st.integers(0, len(TASKS) - 1))
def test_garbage_return_values_get_one_clear_line(garbage, which):
    topic, task, check = TASKS[which]
    status, message = grading.judge(check, lambda *args: garbage)
    assert status == grading.FAIL, (topic, task, garbage)
    assert message and "\n" not in message and len(message) <= 300
    assert "the grader itself failed" not in message, (topic, task, garbage, message)
