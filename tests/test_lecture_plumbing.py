"""``minisgd.lecture`` (a relative ``--data-dir``, ``$MINISGD_DATA``), ``python -m minisgd notebooks``, progress bars.

The notebooks are compared with jupytext's own reading of each source: the
same cells, in the same order, with the same text. The data folder is looked
up the way a notebook whose kernel runs in ``lectures/`` needs it.
"""

import json
from pathlib import Path

import pytest
from test_lectures_cnn import write_tiny_cifar

from minisgd import cli, lecture, notebooks

jupytext = pytest.importorskip("jupytext")

ROOT = Path(__file__).resolve().parents[1]
LECTURES = ROOT / "lectures"
SOURCES = sorted(LECTURES.glob("[0-9][0-9]_*.py"))


# ------------------------------------------------------------ --data-dir
def test_relative_data_dir_is_found_from_the_repository_root_when_the_kernel_runs_in_lectures(monkeypatch):
    monkeypatch.chdir(LECTURES)  # where Jupyter starts a lecture notebook's kernel
    assert lecture.find_data_dir("tests/data") == (ROOT / "tests" / "data").resolve()


def test_relative_data_dir_is_looked_up_in_the_working_folder_first(tmp_path, monkeypatch):
    (tmp_path / "tests" / "data").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert lecture.find_data_dir("tests/data") == (tmp_path / "tests" / "data").resolve()


def test_missing_data_dir_is_one_line_naming_every_place_looked_in(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        lecture.find_data_dir("no/such/folder")
    message = str(stop.value.code)
    assert "\n" not in message and message.startswith("--data-dir no/such/folder: no such folder (looked in ")
    assert str(tmp_path / "no/such/folder") in message and str(ROOT / "no/such/folder") in message


class Args:
    def __init__(self, data_dir=None):
        self.data_dir = data_dir


def test_images_read_cifar10_from_minisgd_data_without_data_dir(tmp_path, monkeypatch):
    write_tiny_cifar(tmp_path / "cifar", per_batch=20)
    monkeypatch.setenv("MINISGD_DATA", str(tmp_path / "cifar"))
    train, test, description = lecture.images(Args(), None, None)
    assert (len(train), len(test)) == (100, 20)  # five batches of 20, and the test batch
    assert description.startswith(f"CIFAR-10 from {(tmp_path / 'cifar').resolve()} (data_batch_1-5")


def test_images_from_a_minisgd_data_without_cifar10_say_so_and_use_the_built_in_set(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINISGD_DATA", str(tmp_path))
    train, _, description = lecture.images(Args(), 50, 20)
    assert description.startswith("SyntheticShapes (built-in), 50 training")
    assert f"$MINISGD_DATA={tmp_path} holds no CIFAR-10" in capsys.readouterr().out


def test_images_from_an_explicit_data_dir_without_cifar10_stop(tmp_path, monkeypatch):
    monkeypatch.delenv("MINISGD_DATA", raising=False)
    with pytest.raises(SystemExit) as stop:
        lecture.images(Args(tmp_path), 50, 20)
    assert str(stop.value.code).startswith(f"--data-dir {tmp_path}: ")


# ------------------------------------------------------------ notebooks
def cells(notebook) -> list[tuple[str, str]]:
    return [(cell["cell_type"], "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"])
            for cell in notebook["cells"]]


def test_notebooks_command_writes_one_notebook_per_lecture_with_the_sources_cells(tmp_path, capsys):
    assert cli.main(["notebooks", "--out", str(tmp_path / "nb")]) == 0
    written = sorted((tmp_path / "nb").iterdir())
    assert [p.name for p in written] == [f"{source.stem}.ipynb" for source in SOURCES]  # nothing else (no temporaries)
    for source, path in zip(SOURCES, written):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        assert cells(notebook) == cells(jupytext.read(source))
        assert notebook["metadata"]["kernelspec"]["name"] == "python3" and "jupytext" not in notebook["metadata"]
        assert notebook["metadata"]["minisgd"]["source"] == f"lectures/{source.name}"
    assert f"wrote {len(SOURCES)} notebooks" in capsys.readouterr().out


def test_notebooks_are_the_same_bytes_every_time_and_are_rewritten_over_our_own(tmp_path):
    out = tmp_path / "nb"
    assert cli.main(["notebooks", "--out", str(out)]) == 0
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    executed = json.loads(first["03_momentum.ipynb"])  # ran in Jupyter: outputs added, cells unchanged
    executed["cells"][1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["ran\n"]}]
    (out / "03_momentum.ipynb").write_text(json.dumps(executed))
    assert cli.main(["notebooks", "--out", str(out)]) == 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first


@pytest.mark.parametrize("in_the_way", ["a file of the user's", "an edited notebook", "a folder"])
def test_notebooks_command_never_replaces_what_it_did_not_write(tmp_path, capsys, in_the_way):
    out = tmp_path / "nb"
    assert cli.main(["notebooks", "--out", str(out)]) == 0
    target = out / "05_sgdr.ipynb"
    if in_the_way == "a folder":
        target.unlink()
        target.mkdir()
    elif in_the_way == "an edited notebook":
        notebook = json.loads(target.read_text())
        notebook["cells"][0]["source"] = ["my notes\n"]
        target.write_text(json.dumps(notebook))
    else:
        target.write_text("my notes")
    before = {p.name: (p.read_bytes() if p.is_file() else None) for p in out.iterdir()}
    (out / "01_gd_vs_sgd.ipynb").write_text((out / "01_gd_vs_sgd.ipynb").read_text())  # ours, unchanged
    capsys.readouterr()
    assert cli.main(["notebooks", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(target) in err and "--force" in err
    assert {p.name: (p.read_bytes() if p.is_file() else None) for p in out.iterdir()} == before  # nothing written
    if in_the_way != "a folder":
        assert cli.main(["notebooks", "--out", str(out), "--force"]) == 0
        assert cells(json.loads(target.read_text())) == cells(jupytext.read(LECTURES / "05_sgdr.py"))


def test_notebooks_out_that_is_a_file_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert cli.main(["notebooks", "--out", str(tmp_path / "file")]) == 2
    expected = f"minisgd: error: --out must be a folder; got {tmp_path / 'file'} (a file)"
    assert capsys.readouterr().err.strip() == expected


def test_notebooks_source_becomes_the_set_up_cells_default(tmp_path):
    url = "git+https://example.org/course/minisgd.git@v1"
    assert cli.main(["notebooks", "--out", str(tmp_path), "--source", url]) == 0
    for path in tmp_path.glob("*.ipynb"):
        set_up = next(source for kind, source in cells(json.loads(path.read_text())) if kind == "code")
        assert f'os.environ.get("MINISGD_SOURCE", "{url}")' in set_up and notebooks.SOURCE_PLACEHOLDER not in set_up


# ------------------------------------------------------------ progress bars
def test_progress_bar_is_the_text_bar_without_ipywidgets(monkeypatch):
    import tqdm.std

    from minisgd import train

    monkeypatch.setattr(train.importlib.util, "find_spec", lambda name: None)
    assert train.progress_bar_class() is tqdm.std.tqdm
