"""Exercises: the student writes the update rule, and a grader built on minisgd says what is wrong.

    python -m minisgd exercise list               # topics, their tasks, and the lecture each follows
    python -m minisgd exercise start momentum     # writes ./exercises/momentum.py (stubs); never overwrites
    python -m minisgd exercise check momentum     # grades it: one line per task, exit code 0 when all pass

One module per topic. Each holds

- ``LECTURES``: the lectures (``lectures/``) it follows;
- ``STUB``: the text of the student's file (stubs with docstrings that raise ``NotImplementedError``);
- ``TASKS``: ``(function name, check)`` pairs, where ``check(student_function)``
  compares the student's function with the answer key (minisgd itself,
  analytic values, finite differences) on several cases and raises
  :class:`~minisgd.exercises.grading.Fail` with a diagnosis.

:mod:`minisgd.exercises.grading` runs the checks, each in a child process with a time limit.
"""

from __future__ import annotations

from types import ModuleType

from minisgd.exercises import adaptive, backprop, cnn, ensembles, momentum, schedules, sgd

TOPICS: tuple[ModuleType, ...] = (sgd, momentum, schedules, backprop, cnn, adaptive, ensembles)
TOPIC_NAMES: tuple[str, ...] = tuple(module.__name__.rsplit(".", 1)[1] for module in TOPICS)


def topic(name: str) -> ModuleType:
    """The topic module called ``name`` (one of ``TOPIC_NAMES``)."""
    if name not in TOPIC_NAMES:
        raise ValueError(f"exercise topic must be one of {', '.join(TOPIC_NAMES)}; got {name!r}")
    return TOPICS[TOPIC_NAMES.index(name)]


def task_names(name: str) -> list[str]:
    """The functions a student writes for topic ``name``, in order."""
    return [task for task, _ in topic(name).TASKS]
