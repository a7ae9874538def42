"""benchmarks/gpu_check.sh: its syntax and the refusals that come before any long step.

Nothing here runs the test suite or the benchmark: the script's CPU rehearsal
(``bash benchmarks/gpu_check.sh OUTDIR --cpu-rehearsal``) does that, by hand.
"""
import os
import shutil
import subprocess
import sys

import pytest

from checkout import REPO

SCRIPT = REPO / "benchmarks" / "gpu_check.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def run_script(*arguments):
    """The script with this Python (its $PYTHON), as the GPU check below assumes."""
    return subprocess.run(["bash", str(SCRIPT), *map(str, arguments)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHON": sys.executable})


def cuda_device_present():
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:   # not installed, or no driver/device
        return False


def test_syntax():
    result = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr


def test_missing_argument_prints_usage():
    result = run_script()
    assert result.returncode == 2
    assert "usage:" in result.stderr and "OUTDIR" in result.stderr


def test_refuses_a_non_empty_folder_without_force(tmp_path):
    mine = tmp_path / "notes.txt"
    mine.write_text("a user's file\n")
    result = run_script(tmp_path, "--cpu-rehearsal")
    assert result.returncode != 0
    assert str(tmp_path) in result.stderr and "--force" in result.stderr
    assert mine.read_text() == "a user's file\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


@pytest.mark.skipif(cuda_device_present(), reason="CuPy sees a GPU here")
def test_without_a_gpu_exits_3(tmp_path):
    outdir = tmp_path / "out"
    outdir.mkdir()
    result = run_script(outdir)
    assert result.returncode == 3
    assert "no GPU" in result.stderr and "--cpu-rehearsal" in result.stderr
    assert list(outdir.iterdir()) == []
