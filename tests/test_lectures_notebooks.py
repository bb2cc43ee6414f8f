"""The lectures open as notebooks: executed by a Jupyter kernel, their figures appear inline.

Also: the set-up cell every lecture opens with (the same in every lecture; it
installs minisgd where it is missing), a lecture copied out of the repository
and run against a pip-installed minisgd (issue 20's "done when"), the "Your
turn" cell each lecture ends with, and the README's notebook commands.

A lecture is read as a notebook with jupytext (percent format) and executed
with nbclient in the ``python3`` kernel (ipykernel, installed by
requirements.txt), in ``--smoke`` mode given through ``MINISGD_LECTURE_ARGS``
since a notebook has no command line. The test counts the ``image/png``
outputs under the cells and checks that the same figures were also saved as
files. By default one short lecture runs; ``MINISGD_FULL=1`` runs them all.
"""

import base64
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FULL

from minisgd.notebooks import SOURCE_PLACEHOLDER

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")

ROOT = Path(__file__).resolve().parents[1]
LECTURES = ROOT / "lectures"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ALL = sorted(p.name for p in LECTURES.glob("[0-9][0-9]_*.py"))
QUICK = ["03_momentum.py"]


def execute_as_notebook(script: str, out: Path):
    """Execute lectures/<script> as a notebook in smoke mode; return the executed notebook."""
    notebook = jupytext.read(LECTURES / script)
    saved = {name: os.environ.get(name) for name in ("MINISGD_LECTURE_ARGS", "MPLBACKEND", "MINISGD_DEVICE",
                                                      "OPENBLAS_NUM_THREADS", "MINISGD_DATA")}
    os.environ["MINISGD_LECTURE_ARGS"] = f"--smoke --out '{out}'"
    os.environ["MPLBACKEND"] = "Agg"  # what a script would use: the lecture must switch to inline itself
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    os.environ["MINISGD_DATA"] = str(out / "no-cifar")  # lecture 07 falls back to the built-in set
    os.environ.pop("MINISGD_DEVICE", None)
    try:
        client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                         resources={"metadata": {"path": str(LECTURES)}})
        client.execute()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return notebook


def inline_images(notebook) -> list[bytes]:
    """The PNG images shown under the notebook's code cells."""
    return [base64.b64decode(output["data"]["image/png"])
            for cell in notebook.cells if cell.cell_type == "code"
            for output in cell.get("outputs", []) if "image/png" in output.get("data", {})]


@pytest.mark.slow
@pytest.mark.parametrize("script", ALL if FULL else QUICK)
def test_lecture_shows_its_figures_inline_and_saves_them(script, tmp_path):
    notebook = execute_as_notebook(script, tmp_path)
    images = inline_images(notebook)
    saved = sorted(tmp_path.glob("*.png"))
    assert saved, f"{script} saved no figure"
    assert len(images) == len(saved), f"{len(images)} inline images for {len(saved)} saved figures"
    for image in images:
        assert image.startswith(PNG_SIGNATURE) and len(image) > 5_000
    errors = [output for cell in notebook.cells for output in cell.get("outputs", [])
              if output.get("output_type") == "error"]
    assert not errors


def test_python3_kernel_is_available():
    """nbclient finds a kernel named python3: ipykernel in the same environment provides it."""
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("python3")  # raises NoSuchKernel when there is none
    assert spec.language == "python" and "ipykernel" in " ".join(spec.argv)


def code_cells(script: str) -> list[str]:
    return [cell.source for cell in jupytext.read(LECTURES / script).cells if cell.cell_type == "code"]


def test_every_lecture_has_the_same_set_up_cell():
    """The first code cell makes minisgd importable (installed, a checkout, or pip from MINISGD_SOURCE): one text."""
    set_up = {script: code_cells(script)[0] for script in ALL}
    assert len(set(set_up.values())) == 1, "the set-up cells differ: " + ", ".join(set_up)
    cell = set_up[ALL[0]]
    assert f'os.environ.get("MINISGD_SOURCE", "{SOURCE_PLACEHOLDER}")' in cell
    assert len(cell.splitlines()) <= 20


@pytest.mark.parametrize("script", ALL)
def test_second_cell_is_about_the_topic(script):
    """The plumbing lives in minisgd/lecture.py: the lecture's own cell imports it and calls start."""
    first_code = code_cells(script)[1]
    assert re.search(r"^from minisgd import [\w, ]*\blecture\b", first_code, re.M) and "lecture.start(" in first_code
    for plumbing in ("sys.path", "matplotlib.use", "ArgumentParser(", "ipykernel", "_lecture"):
        assert plumbing not in first_code


def run_set_up_cell(tmp_path, **env):
    """The set-up cell run as a script from an empty folder, with minisgd nowhere on the path."""
    script = tmp_path / "set_up.py"
    script.write_text(code_cells(ALL[0])[0] + "\nimport minisgd\nprint('minisgd from', minisgd.__file__)\n")
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MINISGD_SOURCE")}
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env={**clean, **env})


def test_set_up_cell_without_minisgd_and_without_a_source_says_what_to_set(tmp_path):
    result = run_set_up_cell(tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "minisgd is not installed: set MINISGD_SOURCE to its git URL, folder or wheel (see the README)"]


def package_source(tmp_path: Path) -> Path:
    """A copy of what `pip install` needs (the package, pyproject.toml, README.md), away from the repository."""
    source = tmp_path / "minisgd-source"
    shutil.copytree(ROOT / "minisgd", source / "minisgd", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    return source


def pip_into(site: Path) -> dict:
    """Environment that makes the set-up cell's `pip install` go into ``site`` (on PYTHONPATH), offline."""
    env = {"PYTHONPATH": str(site), "PIP_TARGET": str(site), "PIP_NO_DEPS": "1", "PIP_NO_INDEX": "1",
           "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    if importlib.util.find_spec("setuptools") is not None:
        env["PIP_NO_BUILD_ISOLATION"] = "0"  # pip's spelling of --no-build-isolation: use this setuptools
    else:
        env.pop("PIP_NO_INDEX")  # an isolated build fetches setuptools from the index
    return env


@pytest.mark.slow
def test_a_lecture_copied_out_of_the_repository_runs_as_a_notebook_against_the_installed_package(tmp_path):
    """Done-when of issue 20: a notebook in an empty folder, minisgd pip-installed by its set-up cell, figures inline.

    The notebook is what `python -m minisgd notebooks` writes; its folder holds
    nothing else. minisgd is not importable when the kernel starts (PYTHONPATH
    is an empty folder, the repository is nowhere on the path), so the set-up
    cell installs it from MINISGD_SOURCE (a copy of the package source) into
    that folder. The lecture then runs in smoke mode, shows its figures under
    the cells and saves them in out/ of the notebook's folder.
    """
    from minisgd.notebooks import notebook_text

    student, site = tmp_path / "student", tmp_path / "site"
    student.mkdir()
    site.mkdir()
    notebook = nbformat.reads(notebook_text(LECTURES / QUICK[0]), as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell("import minisgd\nprint('minisgd from', minisgd.__file__)"))
    env = {**pip_into(site), "MINISGD_SOURCE": str(package_source(tmp_path)), "MINISGD_LECTURE_ARGS": "--smoke",
           "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1"}
    with environment(env, drop=("MINISGD_DEVICE", "MINISGD_DATA")):
        nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                                resources={"metadata": {"path": str(student)}}).execute()
    printed = "".join(output.get("text", "") for output in notebook.cells[-1].outputs)
    assert f"minisgd from {site / 'minisgd' / '__init__.py'}" in printed
    saved = sorted((student / "out").glob("*.png"))
    source = (ROOT / "lectures" / "03_momentum.py").read_text()
    assert [p.name for p in saved] == sorted(re.findall(r'lecture\.save\(\w+, "(\w+\.png)"\)', source))
    images = inline_images(notebook)
    assert len(images) == len(saved) and all(image.startswith(PNG_SIGNATURE) for image in images)


class environment:
    """Set (and drop) environment variables for the kernels started inside; restore them after."""

    def __init__(self, values: dict, drop=()):
        self.values, self.drop = values, drop

    def __enter__(self):
        self.saved = {name: os.environ.get(name) for name in (*self.values, *self.drop, "PYTHONPATH")}
        os.environ.pop("PYTHONPATH", None)
        for name in self.drop:
            os.environ.pop(name, None)
        os.environ.update(self.values)

    def __exit__(self, *_):
        for name, value in self.saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


EXERCISES = {"01": ["sgd"], "02": ["sgd"], "03": ["momentum"], "04": ["schedules"], "05": ["schedules"],
             "06": ["adaptive", "ensembles"], "07": ["cnn", "backprop"], "08": ["backprop"], "09": ["adaptive"],
             "10": ["ensembles"], "11": ["sgd"]}


@pytest.mark.parametrize("script", ALL)
def test_each_lecture_ends_with_your_turn_naming_its_exercises(script):
    last = jupytext.read(LECTURES / script).cells[-1]
    assert last.cell_type == "markdown" and last.source.startswith("## Your turn")
    for topic in EXERCISES[script[:2]]:
        assert f"**{topic}**" in last.source
        assert f"python -m minisgd exercise start {topic}" in last.source
        assert f"python -m minisgd exercise check {topic}" in last.source
    named = set(re.findall(r"python -m minisgd exercise (?:start|check) (\w+)", last.source))
    assert named == set(EXERCISES[script[:2]])


def readme_notebook_commands() -> list[str]:
    """The README's shell lines that write or run notebooks (`python -m minisgd notebooks`, `jupyter …`)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            command = line.split("  #", 1)[0].strip()
            if "python -m minisgd notebooks" in command or re.match(r"^(\w+=\S+ )*jupyter ", command):
                lines.append(command)
    return lines


@pytest.mark.slow
def test_readme_notebook_commands_run_as_written(tmp_path):
    """Every notebook command the README shows runs, in order, in a fresh folder (after the README's set-up:
    this environment's `jupyter`, minisgd importable as from the repository's root)."""
    commands = readme_notebook_commands()
    assert any("python -m minisgd notebooks" in c for c in commands) and any("jupyter " in c for c in commands)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("MINISGD_DEVICE", None)
    env["MINISGD_DATA"] = str(tmp_path / "no-cifar")
    for command in commands:
        if "MINISGD_LECTURE_ARGS" not in command:
            env["MINISGD_LECTURE_ARGS"] = "--smoke"  # the tests' short form; the README's own options win
        result = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    executed = [nbformat.read(path, as_version=4) for path in sorted((tmp_path / "notebooks").glob("*.ipynb"))]
    assert len(executed) == len(ALL)
    assert any(inline_images(notebook) for notebook in executed)  # an executed one, with its figures inline
