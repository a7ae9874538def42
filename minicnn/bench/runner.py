"""Speed benchmark: minicnn layer by layer and end to end, against Keras and PyTorch.

    minicnn bench                                 # everything on every device found
    minicnn bench --device cpu --quick --no-references
    minicnn bench --smoke --out /tmp/b            # one small workload: does it run?
    flock /tmp/minicnn-heavy.lock python -m benchmarks.run --write   # the committed numbers

For each device (the CPU; the GPU when CuPy sees one):

* the matmul ceiling: a 2048^3 (CPU) / 4096^3 (GPU) float32 matrix product,
  the best rate the BLAS reaches here, measured in the same run;
* per layer of the cats vs dogs net and of VGG16's convolutional base, at the
  given batch: forward and backward time, GFLOP/s, and its share of that ceiling;
* end to end, each in a fresh process (so that its peak memory is its own):
  a training step of the cats vs dogs net, its inference, VGG16 feature
  extraction (images/s, peak RSS; CuPy pool bytes on the GPU), and the same
  workloads in Keras 3/TensorFlow and PyTorch when they are installed (the report
  says which were skipped, and why).

GPU timings synchronise the device before reading the clock and exclude
warm-up; every time is a median. Results, bench_<machine>.{md,json,png}, go to a
new runs/bench-<date>-<time> folder, to --out DIR, or with --write to the
benchmarks/results/ folder of a source checkout (the committed results).
"""
from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

from ..flops import layer_flops
from ..io_utils import atomic_write_text
from .output import add_output_options, command_line, cpu_model, machine_name, output_folder
from .report import chart, gpu_speedups, markdown, ratios
from .workloads import WORKLOADS, minicnn_tutorial_net, minicnn_vgg16

# The folder that holds the minicnn package in use: the workloads' processes start there,
# so that they import this same minicnn (a checkout's or an installed one).
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _median_time(function, repeats, sync):
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        function()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_ceiling(xp, sync, size, repeats=5):
    """GFLOP/s of a float32 (size x size) @ (size x size) product."""
    rng = np.random.default_rng(0)
    a = xp.asarray(rng.random((size, size), dtype=np.float32))
    b = xp.asarray(rng.random((size, size), dtype=np.float32))
    a @ b   # warm-up: thread pools, cuBLAS handles
    seconds = _median_time(lambda: a @ b, repeats, sync)
    return {"size": size, "seconds": seconds, "gflops": 2 * size**3 / seconds / 1e9}


def workload_flops(net, model):
    """{workload: floating-point operations per image} for the end-to-end workloads of ``net``.

    The same count for every framework (they run the same network), so that each one's
    images/s becomes an effective GFLOP/s, comparable with the matmul ceiling.
    """
    counts = [layer_flops(layer, 1) for layer in model.layers]
    forward = sum(f for f, _ in counts)
    if net == "vgg16":
        return {"vgg16_extract": forward}
    first_backward = counts[0][1] // 2   # training skips the first layer's input gradient
    backward = sum(b for _, b in counts[1:]) + first_backward
    return {"tutorial_train": forward + backward, "tutorial_infer": forward}


def per_layer(model, x, repeats, sync, ceiling):
    """Forward (training=True) and backward time of every layer, each on its real input.

    The first layer's backward skips the input gradient, as in training.
    """
    rows, h = [], x
    for index, layer in enumerate(model.layers):
        y = layer.forward(h, training=True)                      # warm-up
        dout = y * 0 + 1e-3                                      # same shape and device
        del y   # a held output stops the layer from reusing its array (see engine.scratch)
        need_input_grad = index > 0

        def backward(layer=layer, dout=dout, first=not need_input_grad):
            return layer.backward(dout, need_input_grad=False) if first else \
                layer.backward(dout)
        backward()
        forward_times, backward_times = [], []
        for _ in range(repeats):
            forward_times.append(_median_time(lambda: layer.forward(h, training=True), 1, sync))
            backward_times.append(_median_time(backward, 1, sync))
        fwd, bwd = statistics.median(forward_times), statistics.median(backward_times)
        flops_f, flops_b = layer_flops(layer, x.shape[0])
        if not need_input_grad:
            flops_b //= 2
        row = {"layer": layer.name, "type": type(layer).__name__,
               "output_shape": list(layer.output_shape),
               "forward_ms": fwd * 1e3, "backward_ms": bwd * 1e3}
        if flops_f:
            row.update(forward_gflops=flops_f / fwd / 1e9, backward_gflops=flops_b / bwd / 1e9,
                       forward_share=flops_f / fwd / 1e9 / ceiling,
                       backward_share=flops_b / bwd / 1e9 / ceiling)
        rows.append(row)
        h = layer.forward(h, training=False)
    return rows


def run_workload(framework, device, workload, batch, repeats):
    """One end-to-end workload in a fresh Python process; its JSON result (or the error)."""
    command = [sys.executable, "-m", "minicnn.bench.workloads", framework, device, workload,
               str(batch), str(repeats)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=PACKAGE_PARENT)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"framework": framework, "device": device, "workload": workload,
                "error": " | ".join(tail) or f"exit code {done.returncode}"}
    return json.loads(lines[-1])


REFERENCES = {"keras": ("tensorflow", "keras"), "torch": ("torch",)}


def references(device, no_references=False):
    """``(frameworks to run, [{"framework", "reason"} of those skipped])`` besides minicnn:
    Keras (on TensorFlow, CPU only) and PyTorch, when installed."""
    run, skipped = [], []
    for name, modules in REFERENCES.items():
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        if no_references:
            reason = "--no-references"
        elif missing:
            reason = f"{' and '.join(missing)} not installed"
        elif name == "keras" and device != "cpu":
            reason = "run on the CPU only (tensorflow-cpu)"
        else:
            run.append(name)
            continue
        skipped.append({"framework": name, "reason": reason})
    if device == "gpu" and "torch" in run:
        run.append("torch-tf32")   # PyTorch's default on the GPU, for information
    return run, skipped


def device_section(device, args):
    """Everything measured for one device."""
    from .. import backend

    backend.set_device(device)
    xp, sync = backend.xp(), backend.synchronize
    size = 512 if args.smoke else 2048 if device == "cpu" else 4096
    ceiling = matmul_ceiling(xp, sync, size)
    print(f"[{device}] matmul ceiling {ceiling['gflops']:.0f} GFLOP/s", flush=True)
    rng = np.random.default_rng(0)
    section = {"device": device, "matmul": ceiling, "layers": {}, "end_to_end": []}
    nets = {"tutorial": (minicnn_tutorial_net, args.batch),
            "vgg16": (minicnn_vgg16, args.vgg_batch)}
    if args.smoke:
        del nets["vgg16"]
    for name, (build, batch) in nets.items():
        model = build()
        x = backend.to_device(rng.random((batch, 150, 150, 3), dtype=np.float32))
        repeats = args.repeats if name == "tutorial" else max(1, args.repeats // 3)
        section["layers"][name] = {"batch": batch, "rows": per_layer(model, x, repeats, sync,
                                                                     ceiling["gflops"])}
        section.setdefault("flops_per_image", {}).update(workload_flops(name, model))
        print(f"[{device}] per-layer {name} done", flush=True)
        del model, x
    others, section["skipped"] = references(device, args.no_references)
    workloads = ["tutorial_infer"] if args.smoke else WORKLOADS
    for framework in ["minicnn"] + others:
        for workload in workloads:
            batch = args.vgg_batch if workload == "vgg16_extract" else args.batch
            repeats = max(2, args.repeats // 3) if workload == "vgg16_extract" else args.repeats
            result = run_workload(framework, device, workload, batch, repeats)
            section["end_to_end"].append(result)
            print(f"[{device}] {framework} {workload}: "
                  f"{result.get('images_per_s', float('nan')):.1f} img/s "
                  f"{result.get('error', '')}", flush=True)
    for skipped in section["skipped"]:
        print(f"[{device}] {skipped['framework']} skipped: {skipped['reason']}", flush=True)
    return section


def add_arguments(parser):
    """The benchmark's options (``minicnn bench`` and ``python -m benchmarks.run``)."""
    parser.add_argument("--device", choices=["cpu", "gpu", "all"], default="all")
    parser.add_argument("--batch", type=int, default=None,
                        help="batch (default 32, or 2 with --smoke)")
    parser.add_argument("--vgg-batch", type=int, default=None,
                        help="batch for VGG16 (default: --batch, or 8 with --quick)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed repetitions (default 9, 3 with --quick, 1 with --smoke)")
    parser.add_argument("--quick", action="store_true", help="fewer repeats, small VGG16 batch")
    parser.add_argument("--smoke", action="store_true",
                        help="a check that the benchmark runs, not a measurement: batch 2, "
                        "one repeat, the cats vs dogs net only, its inference end to end")
    parser.add_argument("--no-references", action="store_true",
                        help="skip Keras/TensorFlow and PyTorch")
    add_output_options(parser, "bench")


def _fill_defaults(args):
    if args.batch is None:
        args.batch = 2 if args.smoke else 32
    if args.repeats is None:
        args.repeats = 1 if args.smoke else 3 if args.quick else 9
    if args.vgg_batch is None:
        args.vgg_batch = 8 if args.quick and not args.smoke else args.batch


def _version(distribution):
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def run(args, command):
    """Measure as ``args`` (from :func:`add_arguments`) says and write the report; returns
    the results. ``command`` is recorded in them. Raises ValueError for a device that is
    not there, FileNotFoundError for --write outside a source checkout."""
    from .. import backend

    _fill_defaults(args)
    devices = ["cpu", "gpu"] if args.device == "all" else [args.device]
    if "gpu" in devices and not backend.gpu_available():
        if args.device == "gpu":
            raise ValueError("--device gpu: CuPy is not installed or sees no GPU")
        devices.remove("gpu")
    folder = output_folder(args, "bench")   # before measuring: a wrong --write fails fast
    machine = machine_name()
    if "gpu" in devices:
        name = backend.xp().cuda.runtime.getDeviceProperties(0)["name"].decode()
        machine += "-" + "".join(c if c.isalnum() else "-" for c in name).strip("-").lower()
    results = {"machine": machine, "cpu_model": cpu_model(), "cpu_count": os.cpu_count(),
               "python": platform.python_version(), "numpy": np.__version__,
               "numba": _version("numba"), "batch": args.batch, "vgg_batch": args.vgg_batch,
               "repeats": args.repeats, "smoke": args.smoke, "command": command,
               "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "load_before": [round(v, 2) for v in os.getloadavg()], "devices": []}
    for device in devices:
        results["devices"].append(device_section(device, args))
    results["load_after"] = [round(v, 2) for v in os.getloadavg()]
    results["ratios"] = {s["device"]: ratios(s) for s in results["devices"]}
    results["gpu_over_cpu"] = {w: gpu / cpu for w, (cpu, gpu) in gpu_speedups(results).items()}

    stem = os.path.join(folder, f"bench_{machine}")
    atomic_write_text(stem + ".json", json.dumps(results, indent=1))
    atomic_write_text(stem + ".md", markdown(results))
    chart(results, stem + ".png")
    print(markdown(results))
    print(f"wrote {stem}.md, .json, .png")
    return results


def main(argv=None, program="python -m benchmarks.run"):
    """The command line: ``argv`` (default ``sys.argv[1:]``); ``program`` is how the
    results record the command that made them. Returns the exit code."""
    parser = argparse.ArgumentParser(prog=program, description=__doc__.split("\n")[0])
    add_arguments(parser)
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    try:
        run(args, command_line(program, argv))
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    return 0


if __name__ == "__main__":
    sys.exit(main(program="python -m minicnn.bench.runner"))
