"""The lectures open as notebooks: executed by a Jupyter kernel, their figures appear inline.

A lecture is read as a notebook with jupytext (percent format) and executed
with nbclient in the ``python3`` kernel (ipykernel, installed by
requirements.txt), in ``--smoke`` mode given through ``MINISGD_LECTURE_ARGS``
since a notebook has no command line. The test counts the ``image/png``
outputs under the cells and checks that the same figures were also saved as
files. By default one short lecture runs; ``MINISGD_FULL=1`` runs them all.
"""

import base64
import os
from pathlib import Path

import pytest
from conftest import FULL

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")

LECTURES = Path(__file__).resolve().parents[1] / "lectures"
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


@pytest.mark.parametrize("script", ALL)
def test_first_cell_is_about_the_topic(script):
    """The plumbing lives in lectures/_lecture.py: the first code cell is imports and one start line."""
    notebook = jupytext.read(LECTURES / script)
    assert notebook.cells[0].cell_type == "markdown"
    first_code = next(cell.source for cell in notebook.cells if cell.cell_type == "code")
    assert "import _lecture as lecture" in first_code and "lecture.start(" in first_code
    for plumbing in ("sys.path", "matplotlib.use", "ArgumentParser(", "ipykernel"):
        assert plumbing not in first_code
