"""Lecture 11 (many workers and large batches) in --smoke mode: it starts its own workers with mpiexec.

The checks use facts that do not come from the lecture's arithmetic: K workers
with B/K images each make the single-process update (weights equal to float32
rounding), local SGD with H = 1 and a parameter server with one worker are
the single-process run (the same test accuracy), local SGD averages after
every H-th update and at the epoch's end, and a parameter server with one
worker sees no staleness. Skipped where mpi4py or mpiexec is absent.
"""

import math
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
from test_lectures_cnn import check_figures, number_after, run_lecture

pytest.importorskip("mpi4py")
if shutil.which("mpiexec", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}") is None:
    pytest.skip("mpiexec is not installed (pip install mpich)", allow_module_level=True)

NUMBER = r"([-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?)"


def test_11_many_workers(tmp_path):
    stdout = run_lecture("11_many_workers.py", tmp_path, data_root=tmp_path / "no_cifar")
    check_figures(tmp_path, ["11_large_batches.png", "11_communication.png", "11_local_sgd_and_async.png"])
    assert number_after(stdout, "after 24 updates: largest weight difference") < 1e-5
    single = float(re.search(rf"^same lr\s+64\s+{NUMBER}\s+1\s+8\s+{NUMBER}", stdout, re.M).group(2))
    local = {int(h): (int(rounds), int(updates), float(acc)) for h, rounds, updates, acc in re.findall(
        rf"local SGD, H =\s+(\d+):\s+(\d+) communication rounds for (\d+) updates, final test accuracy {NUMBER}",
        stdout)}
    assert sorted(local) == [1, 4, 16]
    for every, (rounds, updates, _) in local.items():  # averaged after every H-th update and the epoch's last
        assert rounds == sum(1 for t in range(1, updates + 1) if t % every == 0 or t % 8 == 0)
    assert local[1][2] == pytest.approx(single, abs=2 / 256)
    servers = re.findall(rf"parameter server with (\d) worker\(s\): mean staleness τ = {NUMBER} \(max (\d+)\), "
                         rf"final test accuracy {NUMBER}", stdout)
    assert [s[0] for s in servers] == ["1", "3"]
    assert float(servers[0][1]) == 0 and float(servers[0][3]) == pytest.approx(single, abs=2 / 256)
    assert float(servers[1][1]) >= 0
    alpha = number_after(stdout, "ring per message: α =")
    assert 0 < alpha < 1e3 and math.isfinite(number_after(stdout, "ms, β ="))
    for name in ("lenet", "small_vgg"):
        assert f"projection for {name}: speed-up" in stdout
