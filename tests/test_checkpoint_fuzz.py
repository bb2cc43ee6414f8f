"""Fuzzing checkpoint files: byte flips, truncation, crafted zip headers, foreign .npz files with its key names.

A real run's ``checkpoint.npz`` (2 epochs planned, 1 done) is damaged in every way below and resumed with
``python -m minisgd train --resume FOLDER`` (in-process; training replaced by a stop right after the
resume, see ``test_cli_fuzz.small_work``). The outcome must be one clear line (exit 2, ``--resume: …``,
never a traceback, never blaming a flag that was not given), or a resume from exactly the saved data:
every array and every value equal to the undamaged file's.

Profiles: byte flips and truncations are drawn by hypothesis, 60 of each in CI and 600 with
``MINISGD_FULL=1``; foreign files 60 / 600; the crafted zip headers are a fixed list (7 fields × local and
central headers × first and last member).
"""

from __future__ import annotations

import io
import json
import os
import struct
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_cli_fuzz import LAST_WORK, check_outcome, run_case

import minisgd
from minisgd import checkpoint, recipe, runs
from minisgd.train import History

FULL = os.environ.get("MINISGD_FULL") == "1"
EXAMPLES = 600 if FULL else 60
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A real run's checkpoint after epoch 1, rewritten as a run of 2 epochs (so a resume goes on training)."""
    folder = tmp_path_factory.mktemp("run") / "run"
    config = recipe.RunConfig(train_size=64, test_size=32, batch_size=32, epochs=1, schedule="step")
    runs.train_run(runs.start_run(config, folder), progress=False, log=None)
    path = folder / "checkpoint.npz"
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    meta = json.loads(str(arrays["meta"]))
    meta["config"]["epochs"] = 2
    arrays["meta"] = np.array(json.dumps(meta))
    with open(path, "wb") as file:
        np.savez(file, **arrays)
    return {"bytes": path.read_bytes(), "loaded": checkpoint.load_checkpoint(path)}


def same(a, b) -> bool:
    """Two loaded checkpoints hold exactly the same data."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
    return a == b


def resume(data: bytes) -> tuple[int, str, str]:
    """Resume a run folder whose checkpoint.npz holds ``data``; check the outcome's contract.

    A resume that goes ahead must hold exactly what the file holds: the model's and optimizer's
    arrays, the epoch and the history.
    """
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        (tmp / "run").mkdir()
        (tmp / "run" / "checkpoint.npz").write_bytes(data)
        argv = ["train", "--resume", str(tmp / "run"), "--quiet"]
        LAST_WORK.clear()
        code, out, err = run_case(argv, tmp, work=False)
        check_outcome(argv, code, out, err)
        if code == 0 and LAST_WORK:  # resumed, and about to train: from exactly the file's data
            with np.load(tmp / "run" / "checkpoint.npz") as archive:
                stored = {k: archive[k] for k in archive.files}
            model = {k: np.asarray(v) for k, v in LAST_WORK["model"].state_dict().items()}
            optimizer = {k: np.asarray(v) for k, v in LAST_WORK["optimizer"].state_dict().items()}
            assert same(model, {k[6:]: v for k, v in stored.items() if k.startswith("model/")})
            assert same(optimizer, {k[10:]: v for k, v in stored.items() if k.startswith("optimizer/")})
            assert LAST_WORK["start_epoch"] == int(stored["epoch"])
            assert same(minisgd.random.get_state(), stored["random_state"])
            history = json.loads(str(stored["history"]))
            assert LAST_WORK["history"].to_dict() == History.from_dict(history).to_dict()
            assert [e["epoch"] for e in history["epochs"]] == list(range(1, int(stored["epoch"]) + 1))
        elif code != 0:
            assert code == 2 and err.startswith("minisgd: error: --resume: "), err
        return code, out, err


COUNTS = {"flips": 0, "truncations": 0, "headers": 0, "foreign": 0}


def test_the_undamaged_checkpoint_resumes(saved):
    assert resume(saved["bytes"])[0] == 0 and LAST_WORK["start_epoch"] == 1


@FUZZ
@given(st.data())
def test_byte_flips(saved, data):
    raw = bytearray(saved["bytes"])
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] ^= data.draw(st.sampled_from([1, 2, 4, 8, 16, 32, 64, 128, 255]))
    code, _, err = resume(bytes(raw))  # resume() also checks that a resume holds exactly the file's data
    assert code in (0, 2), err  # a flip that leaves the data intact (zip padding, a name) may resume
    COUNTS["flips"] += 1


@FUZZ
@given(st.data())
def test_truncations(saved, data):
    length = data.draw(st.integers(0, len(saved["bytes"]) - 1))
    code, _, err = resume(saved["bytes"][:length])
    assert code == 2, err  # a shortened file never passes for the saved one
    COUNTS["truncations"] += 1


# ------------------------------------------------------------------ crafted zip headers
LOCAL, CENTRAL = b"PK\x03\x04", b"PK\x01\x02"
# (offset of the field after the signature's start, struct format) in a local / a central directory header.
FIELDS = {
    "version needed 113": ({LOCAL: 4, CENTRAL: 6}, "<H", 113),
    "encrypted flag": ({LOCAL: 6, CENTRAL: 8}, "<H", 0x0001),
    "compression method 99": ({LOCAL: 8, CENTRAL: 10}, "<H", 99),
    "compression method 8 (deflate) on stored data": ({LOCAL: 8, CENTRAL: 10}, "<H", 8),
    "wrong CRC": ({LOCAL: 14, CENTRAL: 16}, "<I", 0x12345678),
    "huge compressed size": ({LOCAL: 18, CENTRAL: 20}, "<I", 0xFFFFFFF0),
    "huge uncompressed size": ({LOCAL: 22, CENTRAL: 24}, "<I", 0xFFFFFFF0),
}


def headers(raw: bytes, signature: bytes) -> list[int]:
    at, found = raw.find(signature), []
    while at != -1:
        found.append(at)
        at = raw.find(signature, at + 1)
    return found


@pytest.mark.parametrize("field", sorted(FIELDS))
@pytest.mark.parametrize("where", [LOCAL, CENTRAL], ids=["local header", "central directory"])
@pytest.mark.parametrize("member", ["first", "last", "every"])
def test_crafted_zip_headers(saved, field, where, member):
    offsets, form, value = FIELDS[field]
    raw = bytearray(saved["bytes"])
    starts = headers(bytes(raw), where)
    assert len(starts) >= 5  # one header per stored array
    chosen = {"first": starts[:1], "last": starts[-1:], "every": starts}[member]
    for start in chosen:
        if form == "<H" and field == "encrypted flag":
            old = struct.unpack_from("<H", raw, start + offsets[where])[0]
            struct.pack_into("<H", raw, start + offsets[where], old | value)
        else:
            struct.pack_into(form, raw, start + offsets[where], value)
    resume(bytes(raw))
    COUNTS["headers"] += 1


@pytest.mark.parametrize("damage", [(b"(", b"(("), (b")", b"(")], ids=["an extra bracket", "an unclosed one"])
def test_a_member_whose_npy_header_does_not_parse(saved, damage):
    # NumPy tokenizes a .npy header: an unbalanced bracket raises tokenize.TokenError from inside np.load
    # (a byte flip found it once). Rewrite the zip with one member's header damaged so, and resume it.
    old, new = damage
    source = zipfile.ZipFile(io.BytesIO(saved["bytes"]))
    damaged = io.BytesIO()
    with zipfile.ZipFile(damaged, "w") as target:
        for n, info in enumerate(source.infolist()):
            data = source.read(info)
            if n == 0:
                end = data.index(b"}")
                data = data[:end].replace(old, new, 1) + data[end:]
            target.writestr(info.filename, data)
    code, out, err = resume(damaged.getvalue())
    assert code == 2 and "Traceback" not in err


# ------------------------------------------------------------------ foreign files with the checkpoint's names
def json_values():
    return st.recursive(st.none() | st.booleans() | st.integers(-(10**20), 10**20) | st.floats() | st.text(max_size=8),
                        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                  max_size=3), max_leaves=8)


def odd_arrays():
    return st.one_of(
        st.sampled_from([np.array(-1), np.array(2.5), np.array("3"), np.array([1, 2]), np.array(10**18),
                         np.array(np.iinfo(np.uint64).max), np.array(True), np.array(1), np.array(2), np.array(0),
                         np.zeros((0,)), np.array(np.nan), np.array(b"1"), np.array(2**40),
                         np.full(6, 2.5), np.full(6, -1), np.full(6, np.nan), np.arange(6.0)]),
        json_values().map(lambda value: np.array(json.dumps(value))),
    )


def config_values():
    names = [f.name for f in recipe.RunConfig.__dataclass_fields__.values()]
    return st.dictionaries(st.sampled_from(names), json_values(), max_size=4)


@FUZZ
@given(st.data())
def test_foreign_npz_files_with_the_checkpoints_key_names(saved, data):
    with np.load(tempfile_of(saved["bytes"])) as archive:
        arrays = {k: archive[k] for k in archive.files}
    base = saved["loaded"]["meta"]
    key = data.draw(st.sampled_from(["epoch", "meta", "history", "format_version", "random_state", "config",
                                     "drop", "optimizer/t"]))
    if key == "config":  # the run's settings with a few odd values
        config = {**base["config"], **data.draw(config_values())}
        arrays["meta"] = np.array(json.dumps({**base, "config": config}))
    elif key == "drop":
        arrays.pop(data.draw(st.sampled_from(sorted(arrays))))
    elif key in arrays:
        arrays[key] = data.draw(odd_arrays())
    path = tempfile_of(b"")
    with open(path, "wb") as file:
        np.savez(file, **arrays)
    resume(Path(path).read_bytes())
    COUNTS["foreign"] += 1


def tempfile_of(content: bytes) -> str:
    handle, name = tempfile.mkstemp(suffix=".npz")
    os.write(handle, content)
    os.close(handle)
    return name
