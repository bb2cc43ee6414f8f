"""The optimizer comparison script runs end to end in its --quick form and prints its table."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_compare_optimizers_quick_prints_one_row_per_optimizer():
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "compare_optimizers.py"), "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in lines if line.split() and line.split()[0] in
            ("sgd", "adam", "adamw", "swa")}
    assert set(rows) == {"sgd", "adam", "adamw", "swa"}
    accuracies = [float(rows[name][0]) for name in rows] + [float(rows["swa"][1])]
    assert all(0.0 <= a <= 1.0 for a in accuracies)
    assert "'averaged': 4" in result.stdout  # 2 epochs of 4 updates: SWA from update 4, every update


def test_compare_optimizers_accepts_download_as_its_error_message_suggests(tmp_path, monkeypatch, capsys):
    """Without CIFAR-10 the script says to use --download; with it, the data is fetched (here: a fake archive)."""
    import shutil

    from conftest import load_benchmark
    from test_data_cifar import make_tarball, write_fake_cifar

    from minisgd.data import cifar

    script = load_benchmark("compare_optimizers")
    argv = ["--dataset", "cifar10", "--data-dir", str(tmp_path / "data"), "--epochs", "1", "--optimizers", "sgd"]
    assert script.main(argv) == 2
    assert "--download" in capsys.readouterr().err  # the advice it gives

    write_fake_cifar(tmp_path / "source")
    monkeypatch.setattr(cifar, "ARCHIVE_MD5", make_tarball(tmp_path / "source", tmp_path / "archive.tar.gz"))
    monkeypatch.setattr(cifar, "_fetch", lambda url, destination: shutil.copy(tmp_path / "archive.tar.gz",
                                                                               destination))
    assert script.main([*argv, "--download"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "data" / "cifar-10-batches-py" / "test_batch").is_file()
    assert "lenet on cifar10" in out and any(line.startswith("sgd ") for line in out.splitlines())
