"""``minicnn bench`` works from an installed package: the benchmark lives in
minicnn/bench/, imports nothing from the checkout (tests/, benchmarks/), and the
checkout's ``python -m benchmarks.*`` commands are thin wrappers over it."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from minicnn.bench import output, report, runner

from package_imports import ALL_IMPORTS, MODULES, PACKAGE

REPO = PACKAGE.parent


def test_only_the_cli_imports_the_bench_package_and_it_imports_no_checkout_folder():
    importers, outside = [], []
    for name, path in MODULES.items():
        imports = ALL_IMPORTS[name]
        inside = path.is_relative_to(PACKAGE / "bench")
        if not inside and path != PACKAGE / "cli.py" and \
                any(m == "minicnn.bench" or m.startswith("minicnn.bench.") for m in imports):
            importers.append(str(path.relative_to(REPO)))
        if inside:
            outside += [f"{path.name} imports {m}" for m in imports
                        if m.split(".")[0] in ("tests", "benchmarks", "checkout", "conftest")]
    assert not importers, importers
    assert not outside, outside
    assert (PACKAGE / "bench" / "runner.py").is_file()   # (the scan saw the package)


def test_references_are_compared_when_installed_and_skipped_with_the_reason(monkeypatch):
    installed = {"tensorflow", "keras"}
    monkeypatch.setattr(runner.importlib.util, "find_spec",
                        lambda name: object() if name in installed else None)
    assert runner.references("cpu") == (["keras"], [{"framework": "torch",
                                                     "reason": "torch not installed"}])
    frameworks, skipped = runner.references("gpu")
    assert frameworks == [] and skipped[0] == {"framework": "keras",
                                               "reason": "run on the CPU only (tensorflow-cpu)"}
    installed.add("torch")
    assert runner.references("gpu")[0] == ["torch", "torch-tf32"]
    assert runner.references("cpu", no_references=True) == \
        ([], [{"framework": "keras", "reason": "--no-references"},
              {"framework": "torch", "reason": "--no-references"}])


def test_the_report_names_what_was_skipped():
    section = {"device": "cpu", "matmul": {"size": 8, "seconds": 1e-3, "gflops": 1.0},
               "layers": {}, "end_to_end": [],
               "skipped": [{"framework": "keras", "reason": "tensorflow not installed"}]}
    results = {"machine": "m", "cpu_model": "c", "cpu_count": 1, "python": "3", "numpy": "2",
               "numba": "0", "command": "minicnn bench", "date": "d", "batch": 2,
               "vgg_batch": 2, "load_before": [0], "load_after": [0], "smoke": True,
               "devices": [section]}
    text = report.markdown(results)
    assert "Skipped: keras (tensorflow not installed)." in text
    assert "not a measurement" in text


def _installed_copy(tmp_path):
    """minicnn built as a wheel and installed into a folder of its own (no checkout
    beside it); the environment that imports it from there."""
    pytest.importorskip("setuptools")
    pytest.importorskip("wheel")
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(PACKAGE, source / "minicnn",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", "--no-index",
                          "-w", str(tmp_path / "wheel"), str(source)],
                   check=True, capture_output=True, timeout=120)
    wheel, = (tmp_path / "wheel").glob("minicnn-*.whl")
    site = tmp_path / "site"
    subprocess.run(pip + ["install", "--no-deps", "--no-index", "--target", str(site),
                          str(wheel)], check=True, capture_output=True, timeout=120)
    env = dict(os.environ, PYTHONPATH=str(site),
               MINICNN_DISABLE_NUMBA="1")   # numba's kernels would compile afresh there
    return site, env


def test_minicnn_bench_runs_from_an_installed_wheel_outside_a_checkout(tmp_path):
    site, env = _installed_copy(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    where = subprocess.run([sys.executable, "-c", "import minicnn; print(minicnn.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert Path(where.stdout.strip()).is_relative_to(site), where
    argv = ["bench", "--smoke", "--no-references", "--device", "cpu", "--out", "report"]
    done = subprocess.run([sys.executable, "-m", "minicnn", *argv], cwd=work, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (md,) = (work / "report").glob("bench_*.md")
    results = json.loads(md.with_suffix(".json").read_text())
    assert md.with_suffix(".png").is_file()
    assert results["command"] == "minicnn " + " ".join(argv)
    (section,) = results["devices"]
    assert [(r["framework"], r["workload"]) for r in section["end_to_end"]] == \
        [("minicnn", "tutorial_infer")]
    assert section["end_to_end"][0]["images_per_s"] > 0
    assert "Skipped: keras (--no-references); torch (--no-references)." in md.read_text()
    # --write needs a source checkout: one line, nothing written.
    done = subprocess.run([sys.executable, "-m", "minicnn", "bench", "--write", "--smoke"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert "source checkout" in done.stderr
    assert sorted(os.listdir(work)) == ["report"]


def test_the_checkouts_benchmark_commands_still_run(tmp_path):
    """The commands the committed results record: thin wrappers over minicnn.bench."""
    import benchmarks.run
    import benchmarks.workloads
    from minicnn.bench import workloads

    assert benchmarks.run.main is runner.main
    assert benchmarks.workloads.main is workloads.main
    env = dict(os.environ, MINICNN_DISABLE_NUMBA="1")
    for module in ("benchmarks.run", "benchmarks.epoch", "benchmarks.data_pipeline"):
        done = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "--out" in done.stdout, (module, done.stderr)
    done = subprocess.run([sys.executable, "-m", "benchmarks.workloads", "minicnn", "cpu",
                           "tutorial_infer", "1", "1"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["workload"] == "tutorial_infer" and result["images_per_s"] > 0
    assert output.command_line("benchmarks.run", ["--device", "cpu"]) == \
        "python -m benchmarks.run --device cpu"
