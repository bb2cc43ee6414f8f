"""CIFAR10 on tiny fake files in the official format: parsing, the archive, the download, bad files.

The fake files are Python-2 pickles, byte for byte the way Python 2 and NumPy 1
wrote the real ones (strings as ``STRING`` opcodes, arrays rebuilt by
``numpy.core.multiarray._reconstruct``), so they read with both
``encoding="bytes"`` and ``encoding="latin1"``. Nothing here touches the
network: the download function is replaced by a copy from a local file, or
pointed at a ``file://`` URL.
"""

import hashlib
import io
import os
import pickle
import shutil
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest

from minisgd.data import CIFAR10, CorruptDatasetError, DataLoader, DatasetNotFoundError, cifar

NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
PER_BATCH = 4  # images per fake batch file (the real ones have 10 000)
REAL_FETCH = cifar._fetch


# --------------------------------------------------------- Python-2 pickles
class Python2Pickler(pickle._Pickler):
    """Writes pickles as Python 2 did: every string is a byte string (``U``/``T`` opcodes)."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_string(self, obj):
        if isinstance(obj, str):
            obj = obj.encode("latin1")
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    def save_ndarray(self, array):
        # numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), "b"), then __setstate__.
        self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
        self.write(pickle.GLOBAL + b"numpy\nndarray\n")
        self.save((0,))
        self.save(b"b")
        self.write(pickle.TUPLE3 + pickle.REDUCE)
        self.write(pickle.MARK)
        for item in (1, array.shape):
            self.save(item)
        # numpy.dtype("u1", 0, 1), then its state (3, "|", None, None, None, -1, -1, 0).
        self.write(pickle.GLOBAL + b"numpy\ndtype\n")
        self.save((array.dtype.str[1:], 0, 1))
        self.write(pickle.REDUCE)
        self.save((3, array.dtype.str[0], None, None, None, -1, -1, 0))
        self.write(pickle.BUILD)
        self.save(False)
        self.save(array.tobytes())
        self.write(pickle.TUPLE + pickle.BUILD)

    dispatch[bytes] = save_string
    dispatch[str] = save_string
    dispatch[np.ndarray] = save_ndarray


def python2_pickle(obj) -> bytes:
    buffer = io.BytesIO()
    Python2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


def to_rows(images):
    """(N, 32, 32, 3) images → the official rows: the red plane, then green, then blue, each row by row."""
    rows = np.empty((len(images), 3072), dtype=np.uint8)
    for c in range(3):
        rows[:, c * 1024 : (c + 1) * 1024] = images[:, :, :, c].reshape(len(images), 1024)
    return rows


def write_fake_cifar(root: Path, seed: int = 0) -> dict:
    """Write root/cifar-10-batches-py with PER_BATCH images per file; return what was written."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    written = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        images = rng.integers(0, 256, size=(PER_BATCH, 32, 32, 3), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=PER_BATCH)]
        content = {
            b"batch_label": f"{name} (fake)".encode(),
            b"labels": labels,
            b"data": to_rows(images),
            b"filenames": [f"img_{i}.png".encode() for i in range(PER_BATCH)],
        }
        (folder / name).write_bytes(python2_pickle(content))
        written[name] = (images, labels)
    meta = {b"num_cases_per_batch": PER_BATCH, b"label_names": [n.encode() for n in NAMES], b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(python2_pickle(meta))
    return written


def make_tarball(source_root: Path, destination: Path, arcname="cifar-10-batches-py") -> str:
    """Pack source_root/cifar-10-batches-py as the official archive; return its MD5 (computed here)."""
    with tarfile.open(destination, "w:gz") as archive:
        archive.add(source_root / "cifar-10-batches-py", arcname=arcname)
    return hashlib.md5(destination.read_bytes()).hexdigest()


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A fake data set in tmp_path/source, its archive, and a network that fails the test if used."""
    source = tmp_path / "source"
    written = write_fake_cifar(source)
    archive = tmp_path / "cifar-10-python.tar.gz"
    md5 = make_tarball(source, archive)

    def no_network(url, destination):
        raise AssertionError(f"the network was used: {url}")

    monkeypatch.setattr(cifar, "_fetch", no_network)
    return {"source": source, "written": written, "archive": archive, "md5": md5}


def expected_split(written, train):
    names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
    return (np.concatenate([written[n][0] for n in names]), np.concatenate([written[n][1] for n in names]))


def leftovers(root: Path) -> list[str]:
    """Anything in root besides the data set and its archive (temporary files, half extractions)."""
    expected = ("cifar-10-batches-py", "cifar-10-python.tar.gz")
    return sorted(p.name for p in root.iterdir() if p.name not in expected)


# ------------------------------------------------------------------ parsing
def test_fake_files_read_with_bytes_and_latin1_like_the_real_ones(fake):
    path = fake["source"] / "cifar-10-batches-py" / "data_batch_1"
    images, labels = fake["written"]["data_batch_1"]
    as_bytes = pickle.loads(path.read_bytes(), encoding="bytes")
    as_text = pickle.loads(path.read_bytes(), encoding="latin1")
    assert set(as_bytes) == {b"batch_label", b"labels", b"data", b"filenames"}
    assert set(as_text) == {"batch_label", "labels", "data", "filenames"}
    for content, key in ((as_bytes, b"data"), (as_text, "data")):
        assert content[key].dtype == np.uint8 and content[key].shape == (PER_BATCH, 3072)
        np.testing.assert_array_equal(content[key], to_rows(images))
    assert as_bytes[b"labels"] == labels
    # The opcodes of a Python 2 pickle: byte strings, and NumPy 1's module name.
    raw = path.read_bytes()
    assert b"U\x04data" in raw and b"cnumpy.core.multiarray\n_reconstruct\n" in raw


def test_reads_the_extracted_folder(fake):
    train = CIFAR10(fake["source"], train=True)
    test = CIFAR10(fake["source"], train=False)
    for dataset, is_train in ((train, True), (test, False)):
        images, labels = expected_split(fake["written"], is_train)
        assert dataset.data.dtype == np.uint8 and dataset.data.shape == (len(images), 32, 32, 3)
        np.testing.assert_array_equal(dataset.data, images)
        np.testing.assert_array_equal(dataset.targets, labels)
        assert dataset.targets.dtype.kind == "i"
        assert dataset.classes == NAMES
    assert len(train) == 5 * PER_BATCH and len(test) == PER_BATCH
    image, label = train[3]
    assert image.shape == (32, 32, 3) and label == fake["written"]["data_batch_1"][1][3]


def test_pixel_layout_is_channel_planes_row_by_row(tmp_path):
    """Row value k = c·1024 + i·32 + j is pixel (i, j) of channel c."""
    rows = np.zeros((1, 3072), dtype=np.uint8)
    rows[0, 0 * 1024 + 0 * 32 + 5] = 10  # red at (0, 5)
    rows[0, 1 * 1024 + 2 * 32 + 0] = 20  # green at (2, 0)
    rows[0, 2 * 1024 + 31 * 32 + 31] = 30  # blue at (31, 31)
    path = tmp_path / "batch"
    content = {b"data": rows, b"labels": [7], b"batch_label": b"x", b"filenames": [b"a"]}
    path.write_bytes(python2_pickle(content))
    images, labels = cifar.load_batch(path)
    assert images[0, 0, 5, 0] == 10 and images[0, 2, 0, 1] == 20 and images[0, 31, 31, 2] == 30
    assert images.sum() == 60 and labels.tolist() == [7]


def test_loader_over_cifar(fake):
    x, y = next(iter(DataLoader(CIFAR10(fake["source"]), batch_size=6)))
    assert x.shape == (6, 32, 32, 3) and y.dtype == np.int64


# ------------------------------------------------------ archive and download
def test_local_archive_is_checked_and_extracted_without_network(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(cifar, "ARCHIVE_MD5", fake["md5"])
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(fake["archive"], root / "cifar-10-python.tar.gz")
    dataset = CIFAR10(root, train=False)
    np.testing.assert_array_equal(dataset.data, expected_split(fake["written"], False)[0])
    assert (root / "cifar-10-batches-py" / "batches.meta").is_file()
    assert leftovers(root) == []


def test_download_fetches_verifies_and_keeps_the_archive(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(cifar, "ARCHIVE_MD5", fake["md5"])
    calls = []

    def fetch(url, destination):
        calls.append(url)
        shutil.copy(fake["archive"], destination)

    monkeypatch.setattr(cifar, "_fetch", fetch)
    root = tmp_path / "new" / "root"  # does not exist yet
    dataset = CIFAR10(root, train=True, download=True)
    np.testing.assert_array_equal(dataset.targets, expected_split(fake["written"], True)[1])
    assert calls == ["https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"]
    assert hashlib.md5((root / "cifar-10-python.tar.gz").read_bytes()).hexdigest() == fake["md5"]
    assert leftovers(root) == []
    CIFAR10(root, train=True, download=True)  # already there: no second download
    assert len(calls) == 1


def test_real_fetch_function_through_a_file_url(fake, tmp_path, monkeypatch, capsys):
    """The real download code (urllib + progress bar), on a file:// URL instead of the network."""
    monkeypatch.setattr(cifar, "_fetch", REAL_FETCH)  # the URL is a local file: no network
    monkeypatch.setattr(cifar, "ARCHIVE_URL", fake["archive"].resolve().as_uri())
    monkeypatch.setattr(cifar, "ARCHIVE_MD5", fake["md5"])
    root = tmp_path / "root"
    assert len(CIFAR10(root, train=False, download=True)) == PER_BATCH
    assert "downloading cifar-10-python.tar.gz" in capsys.readouterr().err


def test_failed_download_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(cifar, "ARCHIVE_URL", (tmp_path / "missing.tar.gz").resolve().as_uri())
    root = tmp_path / "root"
    with pytest.raises(DatasetNotFoundError, match="could not download CIFAR-10") as caught:
        CIFAR10(root, download=True)
    assert str(root / "cifar-10-python.tar.gz") in str(caught.value)
    assert leftovers(root) == []


def test_wrong_md5_is_rejected_before_anything_is_unpickled_or_extracted(fake, tmp_path, monkeypatch):
    def must_not_run(*args, **kwargs):
        raise AssertionError("unpickled or extracted an archive whose MD5 is wrong")

    monkeypatch.setattr(cifar, "_load_pickle", must_not_run)
    monkeypatch.setattr(cifar, "extract_archive", must_not_run)
    monkeypatch.setattr(cifar, "_fetch", lambda url, destination: shutil.copy(fake["archive"], destination))
    # ARCHIVE_MD5 is the real one, which the fake archive does not have.
    root = tmp_path / "root"
    expected = f"has MD5 {fake['md5']}, expected c58f30108f718f92721af3b95e74349a"
    with pytest.raises(CorruptDatasetError, match=expected):
        CIFAR10(root, download=True)
    assert leftovers(root) == [] and not (root / "cifar-10-python.tar.gz").exists()


def test_damaged_local_archive_is_an_error_offline_and_replaced_when_downloading(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(cifar, "ARCHIVE_MD5", fake["md5"])
    root = tmp_path / "root"
    root.mkdir()
    data = fake["archive"].read_bytes()
    (root / "cifar-10-python.tar.gz").write_bytes(data[: len(data) // 2])  # an interrupted copy
    with pytest.raises(CorruptDatasetError, match="incomplete or damaged.*--download"):
        CIFAR10(root)
    monkeypatch.setattr(cifar, "_fetch", lambda url, destination: shutil.copy(fake["archive"], destination))
    assert len(CIFAR10(root, download=True)) == 5 * PER_BATCH
    assert (root / "cifar-10-python.tar.gz").read_bytes() == data


def test_missing_dataset_offline_says_where_to_put_it(tmp_path):
    root = tmp_path / "empty"
    with pytest.raises(DatasetNotFoundError) as caught:
        CIFAR10(root)
    message = str(caught.value)
    assert isinstance(caught.value, FileNotFoundError)
    assert str(root / "cifar-10-batches-py") in message and str(root / "cifar-10-python.tar.gz") in message
    assert "--download" in message and "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in message
    assert not root.exists()  # looking does not create anything


def test_default_root_is_minisgd_data_or_the_cache(tmp_path, monkeypatch, fake):
    monkeypatch.setenv("MINISGD_DATA", str(fake["source"]))
    assert cifar.default_root() == fake["source"]
    assert len(CIFAR10(train=False)) == PER_BATCH
    monkeypatch.delenv("MINISGD_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cifar.default_root() == tmp_path / "home" / ".cache" / "minisgd"


# --------------------------------------------------------------- bad files
def _break(fake, name, content: bytes):
    (fake["source"] / "cifar-10-batches-py" / name).write_bytes(content)


def test_truncated_pickle(fake):
    path = fake["source"] / "cifar-10-batches-py" / "data_batch_3"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptDatasetError, match="data_batch_3 is corrupt or truncated"):
        CIFAR10(fake["source"])
    CIFAR10(fake["source"], train=False)  # the test split does not read data_batch_3


def test_garbage_and_wrong_contents(fake):
    _break(fake, "test_batch", b"this is not a pickle at all")
    with pytest.raises(CorruptDatasetError, match="test_batch is corrupt or truncated"):
        CIFAR10(fake["source"], train=False)
    _break(fake, "test_batch", python2_pickle([1, 2, 3]))
    with pytest.raises(CorruptDatasetError, match="expected a pickled dict, got list"):
        CIFAR10(fake["source"], train=False)
    _break(fake, "test_batch", python2_pickle({b"data": np.zeros((2, 3072), np.uint8)}))
    with pytest.raises(CorruptDatasetError, match="no 'labels' entry"):
        CIFAR10(fake["source"], train=False)
    _break(fake, "test_batch", python2_pickle({b"data": np.zeros((2, 1000), np.uint8), b"labels": [0, 1]}))
    expected = r"'data' must be a uint8 array of shape \(N, 3072\); got uint8 array of shape \(2, 1000\)"
    with pytest.raises(CorruptDatasetError, match=expected):
        CIFAR10(fake["source"], train=False)
    _break(fake, "test_batch", python2_pickle({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1, 2]}))
    with pytest.raises(CorruptDatasetError, match="2 images but 'labels' has shape"):
        CIFAR10(fake["source"], train=False)
    _break(fake, "test_batch", python2_pickle({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}))
    with pytest.raises(CorruptDatasetError, match="labels must be in 0..9"):
        CIFAR10(fake["source"], train=False)


def test_pickle_that_would_run_code_is_refused(fake, tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    malicious = pickle.dumps({"data": Payload()}, protocol=2)
    pickle.loads(malicious, encoding="bytes")  # an ordinary unpickler runs the payload ...
    assert marker.exists()
    marker.unlink()
    _break(fake, "test_batch", malicious)
    with pytest.raises(CorruptDatasetError, match=r"asks to call (builtins|__builtin__|io)\.open.*refusing"):
        CIFAR10(fake["source"], train=False)
    assert not marker.exists()  # ... the CIFAR-10 reader does not


def test_a_folder_with_some_training_batches_is_read_and_says_which(fake):
    folder = fake["source"] / "cifar-10-batches-py"
    (folder / "data_batch_5").unlink()  # the shared subset's layout: data_batch_1 … 4, test_batch, batches.meta
    train, test = CIFAR10(fake["source"], train=True), CIFAR10(fake["source"], train=False)
    names = [f"data_batch_{i}" for i in range(1, 5)]
    assert train.files == names and train.missing == ["data_batch_5"] and train.folder == folder
    np.testing.assert_array_equal(train.data, np.concatenate([fake["written"][n][0] for n in names]))
    np.testing.assert_array_equal(train.targets, np.concatenate([fake["written"][n][1] for n in names]))
    assert train.describe_files() == "data_batch_1-4 of 5"
    assert test.files == ["test_batch"] and test.missing == [] and len(test) == PER_BATCH
    (folder / "data_batch_2").unlink()
    gappy = CIFAR10(fake["source"], train=True)
    assert gappy.files == ["data_batch_1", "data_batch_3", "data_batch_4"]
    assert gappy.describe_files() == "data_batch_1, 3, 4 of 5" and len(gappy) == 3 * PER_BATCH


def test_describe_files():
    assert cifar.describe_files([f"data_batch_{i}" for i in range(1, 6)]) == "data_batch_1-5"
    assert cifar.describe_files(["data_batch_3"]) == "data_batch_3 of 5"
    assert cifar.describe_files(["test_batch"]) == "test_batch"


@pytest.mark.parametrize("removed, lacking", [
    (["test_batch"], "test_batch"),
    (["batches.meta"], "batches.meta"),
    ([f"data_batch_{i}" for i in range(1, 6)], "every one of data_batch_1 … data_batch_5"),
])
def test_incomplete_folder(fake, removed, lacking):
    for name in removed:
        (fake["source"] / "cifar-10-batches-py" / name).unlink()
    for train in (True, False):
        with pytest.raises(DatasetNotFoundError, match=f"incomplete: it lacks {lacking}.*--download"):
            CIFAR10(fake["source"], train=train)


def test_the_command_line_says_which_files_it_read(fake, capsys, tmp_path):
    from minisgd import cli

    (fake["source"] / "cifar-10-batches-py" / "data_batch_5").unlink()
    code = cli.main(["train", "--dataset", "cifar10", "--data-dir", str(fake["source"]), "--epochs", "1",
                     "--batch-size", "8", "--quiet", "--out", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert code == 0
    folder = fake["source"] / "cifar-10-batches-py"
    assert out.splitlines()[0] == (f"data: cifar10 from {folder}: {4 * PER_BATCH} training images "
                                   f"(data_batch_1-4 of 5), {PER_BATCH} test images; not the official files: "
                                   f"MD5 differs for data_batch_1-4, test_batch, batches.meta")


def official(folder: Path) -> dict:
    """The fake files' own MD5s (hashlib here), standing in for the published ones of the real files."""
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def test_a_flipped_pixel_in_an_official_batch_is_named_and_still_read(fake, monkeypatch, capsys, tmp_path):
    from minisgd import cli

    folder = fake["source"] / "cifar-10-batches-py"
    monkeypatch.setattr(cifar, "FILE_MD5", official(folder))
    assert CIFAR10(fake["source"], train=True).md5_differs == []
    # One pixel of data_batch_2, changed inside its pickle: the file still parses.
    images, _ = fake["written"]["data_batch_2"]
    content = (folder / "data_batch_2").read_bytes()
    at = content.index(to_rows(images).tobytes()) + 1234
    (folder / "data_batch_2").write_bytes(content[:at] + bytes([content[at] ^ 0x01]) + content[at + 1:])
    train = CIFAR10(fake["source"], train=True)
    assert train.md5_differs == ["data_batch_2"]
    expected, _ = expected_split(fake["written"], True)
    assert np.count_nonzero(train.data != expected) == 1  # read as it is, the flipped pixel included
    assert CIFAR10(fake["source"], train=False).md5_differs == []
    code = cli.main(["train", "--dataset", "cifar10", "--data-dir", str(fake["source"]), "--epochs", "1",
                     "--batch-size", "8", "--quiet", "--out", str(tmp_path / "run")])
    first = capsys.readouterr().out.splitlines()[0]
    assert code == 0 and first.endswith("; not the official files: MD5 differs for data_batch_2"), first


def test_official_files_are_said_to_be_official(fake, monkeypatch, capsys, tmp_path):
    from minisgd import cli

    monkeypatch.setattr(cifar, "FILE_MD5", official(fake["source"] / "cifar-10-batches-py"))
    code = cli.main(["train", "--dataset", "cifar10", "--data-dir", str(fake["source"]), "--epochs", "1",
                     "--batch-size", "8", "--quiet", "--out", str(tmp_path / "run")])
    first = capsys.readouterr().out.splitlines()[0]
    assert code == 0 and first.endswith("test images; the official files (MD5 checked)"), first


SUBSET = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cifar10-subset"


@pytest.mark.skipif(not (SUBSET / "cifar-10-batches-py").is_dir(), reason="the shared CIFAR-10 subset is absent")
def test_the_shared_real_subset():
    train, test = CIFAR10(SUBSET, train=True), CIFAR10(SUBSET, train=False)
    assert (len(train), len(test)) == (4068, 1017) and train.describe_files() == "data_batch_1-4 of 5"
    assert train.data.shape[1:] == (32, 32, 3) and set(np.unique(train.targets)) <= set(range(10))
    # The subset is rewritten from the official files, so its batches are not the official ones; its
    # batches.meta is the official file.
    assert train.md5_differs == ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4"]
    assert test.md5_differs == ["test_batch"]


# -------------------------------------------------------- atomic extraction
def _check_extraction_fails(fake, tmp_path, monkeypatch, archive: Path, match: str, error=CorruptDatasetError):
    monkeypatch.setattr(cifar, "ARCHIVE_MD5", hashlib.md5(archive.read_bytes()).hexdigest())
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    shutil.copy(archive, root / "cifar-10-python.tar.gz")
    with pytest.raises(error, match=match):
        CIFAR10(root)
    # Nothing that looks like a data set, and no temporary folder, is left behind.
    assert not (root / "cifar-10-batches-py").exists()
    assert leftovers(root) == []


def test_truncated_archive_leaves_nothing(fake, tmp_path, monkeypatch):
    """A damaged archive whose MD5 was (wrongly) accepted still fails cleanly."""
    data = fake["archive"].read_bytes()
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(data[: int(len(data) * 0.8)])
    _check_extraction_fails(fake, tmp_path, monkeypatch, truncated, "could not be extracted|lacks")


def test_archive_missing_a_file_leaves_nothing(fake, tmp_path, monkeypatch):
    (fake["source"] / "cifar-10-batches-py" / "test_batch").unlink()
    partial = tmp_path / "partial.tar.gz"
    make_tarball(fake["source"], partial)
    _check_extraction_fails(fake, tmp_path, monkeypatch, partial, "lacks test_batch")


def test_interrupted_extraction_leaves_nothing(fake, tmp_path, monkeypatch):
    """Even an error in the middle of writing files (a full disk) leaves no half data set."""
    original = tarfile.TarFile.extractall

    def extract_then_fail(self, path, *args, **kwargs):
        original(self, path, *args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tarfile.TarFile, "extractall", extract_then_fail)
    _check_extraction_fails(fake, tmp_path, monkeypatch, fake["archive"], "No space left on device", OSError)


@pytest.mark.parametrize(
    "member", ["../escaped", "cifar-10-batches-py/../../escaped", "/tmp/escaped-absolute", "elsewhere/file"]
)
def test_archive_with_paths_outside_the_folder_is_refused(fake, tmp_path, monkeypatch, member):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(fake["source"] / "cifar-10-batches-py", arcname="cifar-10-batches-py")
        payload = b"overwritten"
        info = tarfile.TarInfo(member)
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    _check_extraction_fails(fake, tmp_path, monkeypatch, archive, "refusing to extract")
    assert not (tmp_path / "escaped").exists() and not (tmp_path.parent / "escaped").exists()
    assert not os.path.exists("/tmp/escaped-absolute")


def test_archive_with_a_link_is_refused(fake, tmp_path, monkeypatch):
    archive = tmp_path / "link.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(fake["source"] / "cifar-10-batches-py", arcname="cifar-10-batches-py")
        info = tarfile.TarInfo("cifar-10-batches-py/shortcut")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    _check_extraction_fails(fake, tmp_path, monkeypatch, archive, "not a plain file or folder")
