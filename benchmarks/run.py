"""Speed benchmark: minicnn layer by layer and end to end, against Keras and PyTorch.

    python -m benchmarks.run                      # everything on every device found
    python -m benchmarks.run --quick --no-references
    flock /tmp/minicnn-heavy.lock python -m benchmarks.run   # the committed numbers

For each device (the CPU; the GPU when CuPy sees one):

* the matmul ceiling: a 2048^3 (CPU) / 4096^3 (GPU) float32 matrix product,
  the best rate the BLAS reaches here, measured in the same run;
* per layer of the cats vs dogs net and of VGG16's convolutional base, at the
  given batch: forward and backward time, GFLOP/s, and its share of that ceiling;
* end to end, each in a fresh process (so that its peak memory is its own):
  a training step of the cats vs dogs net, its inference, VGG16 feature
  extraction (images/s, peak RSS; CuPy pool bytes on the GPU), and the same
  workloads in Keras 3/TensorFlow and PyTorch when they are installed.

GPU timings synchronise the device before reading the clock and exclude
warm-up; every time is a median. Results, bench_<machine>.{md,json,png}, go to a
new runs/bench-<date>-<time> folder, to --out DIR, or with --write to
benchmarks/results/ (the committed results).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

from benchmarks.data_pipeline import (add_output_options, command_line, cpu_model,
                                      machine_name, output_folder)
from benchmarks.workloads import WORKLOADS, minicnn_tutorial_net, minicnn_vgg16
from minicnn.io_utils import atomic_write_text

WORKLOAD_TITLES = {"tutorial_train": "cats vs dogs net: training step",
                   "tutorial_infer": "cats vs dogs net: inference",
                   "vgg16_extract": "VGG16 conv base: feature extraction"}


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


def layer_flops(layer, batch):
    """(forward, backward) floating-point operations of one layer for a batch."""
    from minicnn import Conv2D, Dense

    if isinstance(layer, Conv2D):
        out_h, out_w, filters = layer.output_shape
        kh, kw = layer.kernel_size
        forward = 2 * batch * out_h * out_w * kh * kw * layer.input_shape[-1] * filters
        return forward, 2 * forward   # grad_kernel and grad_x: one product each
    if isinstance(layer, Dense):
        forward = 2 * batch * layer.input_shape[0] * layer.units
        return forward, 2 * forward
    return 0, 0


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
        grad = y * 0 + 1e-3                                      # same shape and device
        del y   # a held output stops the layer from reusing its array (see engine.scratch)
        need_input_grad = index > 0

        def backward(layer=layer, grad=grad, first=not need_input_grad):
            return layer.backward(grad, need_input_grad=False) if first else \
                layer.backward(grad)
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
    command = [sys.executable, "-m", "benchmarks.workloads", framework, device, workload,
               str(batch), str(repeats)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(command, capture_output=True, text=True, env=env,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"framework": framework, "device": device, "workload": workload,
                "error": " | ".join(tail) or f"exit code {done.returncode}"}
    return json.loads(lines[-1])


def available_references():
    """The reference frameworks installed here: "keras" (on TensorFlow) and "torch"."""
    return [name for module, name in (("tensorflow", "keras"), ("torch", "torch"))
            if importlib.util.find_spec(module) is not None]


def device_section(device, args):
    """Everything measured for one device."""
    from minicnn import backend

    backend.set_device(device)
    xp, sync = backend.xp(), backend.synchronize
    ceiling = matmul_ceiling(xp, sync, 2048 if device == "cpu" else 4096)
    print(f"[{device}] matmul ceiling {ceiling['gflops']:.0f} GFLOP/s", flush=True)
    rng = np.random.default_rng(0)
    section = {"device": device, "matmul": ceiling, "layers": {}, "end_to_end": []}
    nets = {"tutorial": (minicnn_tutorial_net, args.batch),
            "vgg16": (minicnn_vgg16, args.vgg_batch)}
    for name, (build, batch) in nets.items():
        model = build()
        x = backend.to_device(rng.random((batch, 150, 150, 3), dtype=np.float32))
        repeats = args.repeats if name == "tutorial" else max(1, args.repeats // 3)
        section["layers"][name] = {"batch": batch, "rows": per_layer(model, x, repeats, sync,
                                                                     ceiling["gflops"])}
        section.setdefault("flops_per_image", {}).update(workload_flops(name, model))
        print(f"[{device}] per-layer {name} done", flush=True)
        del model, x
    frameworks = ["minicnn"] + ([] if args.no_references else available_references())
    if device == "gpu" and "torch" in frameworks:
        frameworks.append("torch-tf32")   # PyTorch's default on the GPU, for information
    for framework in frameworks:
        if framework == "keras" and device != "cpu":
            continue
        for workload in WORKLOADS:
            batch = args.vgg_batch if workload == "vgg16_extract" else args.batch
            repeats = max(2, args.repeats // 3) if workload == "vgg16_extract" else args.repeats
            result = run_workload(framework, device, workload, batch, repeats)
            section["end_to_end"].append(result)
            print(f"[{device}] {framework} {workload}: "
                  f"{result.get('images_per_s', float('nan')):.1f} img/s "
                  f"{result.get('error', '')}", flush=True)
    return section


# -- the report -------------------------------------------------------------------------

def _fmt(value, digits=1):
    return "-" if value is None else f"{value:.{digits}f}"


def ratios(section):
    """minicnn's speed relative to each reference, per workload (>1: minicnn is faster)."""
    found = {(r["framework"], r["workload"]): r for r in section["end_to_end"] if "error" not in r}
    out = {}
    for (framework, workload), result in found.items():
        mine = found.get(("minicnn", workload))
        if framework != "minicnn" and mine:
            out[f"{workload} vs {framework}"] = mine["images_per_s"] / result["images_per_s"]
    return out


def gpu_speedups(results):
    """{workload: (minicnn CPU images/s, minicnn GPU images/s)} when both devices ran."""
    rates = {(r["device"], r["workload"]): r["images_per_s"]
             for section in results["devices"] for r in section["end_to_end"]
             if r["framework"] == "minicnn" and "error" not in r}
    return {w: (rates["cpu", w], rates["gpu", w]) for w in WORKLOADS
            if ("cpu", w) in rates and ("gpu", w) in rates}


def markdown(results):
    lines = [f"# minicnn speed on {results['machine']}", "",
             f"- CPU: {results['cpu_model']} ({results['cpu_count']} cores); "
             f"Python {results['python']}, NumPy {results['numpy']}, numba {results['numba']}",
             f"- Command: `{results['command']}`; date {results['date']}",
             f"- Batch {results['batch']} (VGG16: {results['vgg_batch']}), 150x150x3 float32; "
             "times are medians after warm-up; GPU times synchronised",
             f"- 1-minute load average before/after: {results['load_before']} / "
             f"{results['load_after']} (other processes on a shared machine slow everything)",
             ""]
    speedups = gpu_speedups(results)
    if speedups:
        lines += ["## GPU against CPU (minicnn, this machine, this run)", "",
                  "| workload | CPU images/s | GPU images/s | GPU/CPU |", "| --- | ---: | ---: | ---: |"]
        lines += [f"| {WORKLOAD_TITLES[w]} | {cpu:.1f} | {gpu:.1f} | **{gpu / cpu:.0f}x** |"
                  for w, (cpu, gpu) in speedups.items()]
        lines.append("")
    for section in results["devices"]:
        device = section["device"]
        m = section["matmul"]
        lines += [f"## {device.upper()}", "",
                  f"Matmul ceiling: {m['size']}^3 float32 in {m['seconds'] * 1e3:.1f} ms = "
                  f"**{m['gflops']:.0f} GFLOP/s**.", "",
                  "### End to end", "",
                  "| workload | framework | images/s | ms/batch | effective GFLOP/s "
                  "| % ceiling | peak memory (MB) |",
                  "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
        for r in section["end_to_end"]:
            title = WORKLOAD_TITLES[r["workload"]]
            if "error" in r:
                lines.append(f"| {title} | {r['framework']} | failed: {r['error'][:80]} | | |")
                continue
            memory = r.get("gpu_pool_bytes", r["peak_rss_bytes"]) / 2**20
            kind = "GPU pool" if "gpu_pool_bytes" in r else "RSS"
            flops = section.get("flops_per_image", {}).get(r["workload"])
            gflops = None if flops is None else flops * r["images_per_s"] / 1e9
            share = None if gflops is None else 100 * gflops / m["gflops"]
            lines.append(f"| {title} | {r['framework']} | {r['images_per_s']:.1f} | "
                         f"{r['seconds'] * 1e3:.0f} | {_fmt(gflops, 0)} | {_fmt(share, 0)} | "
                         f"{memory:.0f} ({kind}) |")
        lines += ["", "Effective GFLOP/s: the network's multiply-adds (x2) per image, the same "
                  "count for every framework, times its images/s; % ceiling: that against the "
                  "matmul ceiling above. A framework above 100% does better than this NumPy's "
                  "own BLAS on a large square product."]
        if device == "gpu":
            lines += ["", "`torch`: cuDNN autotuned, TF32 off, so every product is true float32 as "
                      "in minicnn (cuBLAS SGEMM); `torch-tf32`: PyTorch's default, whose cuDNN "
                      "convolutions use TF32 tensor cores (10-bit mantissas), for information."]
        lines += ["", "minicnn's speed relative to each reference (> 1: minicnn faster):", ""]
        lines += [f"- {key}: **{value:.2f}x**" for key, value in ratios(section).items()] or \
                 ["- (no reference ran)"]
        for net, data in section["layers"].items():
            lines += ["", f"### Per layer: {net} (batch {data['batch']})", "",
                      "| layer | output | fwd ms | bwd ms | fwd GFLOP/s | bwd GFLOP/s | "
                      "fwd % ceiling | bwd % ceiling |",
                      "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
            for row in data["rows"]:
                share = lambda k: None if k not in row else 100 * row[k]   # noqa: E731
                lines.append(
                    f"| {row['layer']} | {'x'.join(map(str, row['output_shape']))} | "
                    f"{row['forward_ms']:.1f} | {row['backward_ms']:.1f} | "
                    f"{_fmt(row.get('forward_gflops'))} | {_fmt(row.get('backward_gflops'))} | "
                    f"{_fmt(share('forward_share'), 0)} | {_fmt(share('backward_share'), 0)} |")
            total_f = sum(r["forward_ms"] for r in data["rows"])
            total_b = sum(r["backward_ms"] for r in data["rows"])
            lines.append(f"| **total** | | {total_f:.1f} | {total_b:.1f} | | | | |")
            lines.append("")
            lines.append("The first layer's backward skips the input gradient (as in training). "
                         "On the CPU, 3x3 stride-1 layers with 32 or more input channels run "
                         "Winograd's F(2x2, 3x3) and are credited with the direct "
                         "convolution's FLOPs: their GFLOP/s are effective and can pass "
                         "the ceiling. Each layer is timed on its own here; the end-to-end "
                         "rows run each Conv2D + ReLU and the MaxPooling2D after it as one "
                         "pass on the CPU (Sequential.fuse_conv_pool), so a pair's time "
                         "there is less than the sum of its two rows.")
        lines.append("")
    return "\n".join(lines) + "\n"


def chart(results, path):
    """Images/s per workload for every framework and device, and the per-layer split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), dpi=90)
    bars = {}   # "framework (device)" -> {workload: images/s}
    for section in results["devices"]:
        for r in section["end_to_end"]:
            if "error" not in r:
                bars.setdefault(f"{r['framework']} ({r['device']})", {})[r["workload"]] = \
                    r["images_per_s"]
    width = 0.8 / max(len(bars), 1)
    for i, (label, values) in enumerate(bars.items()):
        xs = [j + i * width for j in range(len(WORKLOADS))]
        left.bar(xs, [values.get(w, 0) for w in WORKLOADS], width, label=label)
    left.set_xticks([j + 0.4 - width / 2 for j in range(len(WORKLOADS))])
    left.set_xticklabels(["tutorial\ntrain step", "tutorial\ninference", "VGG16\nextraction"])
    left.set_yscale("log")
    left.set_ylabel("images/s (log scale, higher is better)")
    left.legend(fontsize=8)
    left.set_title("End to end")
    for k, section in enumerate(results["devices"]):
        rows = section["layers"]["tutorial"]["rows"]
        names = [r["layer"] for r in rows]
        ys = [j + 0.4 * k for j in range(len(rows))]
        right.barh(ys, [r["forward_ms"] for r in rows], 0.4, label=f"forward ({section['device']})")
        right.barh(ys, [r["backward_ms"] for r in rows], 0.4,
                   left=[r["forward_ms"] for r in rows], label=f"backward ({section['device']})")
        right.set_yticks(range(len(rows)))
        right.set_yticklabels(names, fontsize=8)
    right.invert_yaxis()
    right.set_xlabel("ms per batch")
    right.set_title("cats vs dogs net, per layer")
    right.legend(fontsize=8)
    fig.suptitle(f"minicnn on {results['machine']}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=["cpu", "gpu", "all"], default="all")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--vgg-batch", type=int, default=None,
                        help="batch for VGG16 (default: --batch, or 8 with --quick)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed repetitions (default 9, or 3 with --quick)")
    parser.add_argument("--quick", action="store_true", help="fewer repeats, small VGG16 batch")
    parser.add_argument("--no-references", action="store_true",
                        help="skip Keras/TensorFlow and PyTorch")
    add_output_options(parser, "bench")
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 9
    if args.vgg_batch is None:
        args.vgg_batch = 8 if args.quick else args.batch

    import numba

    from minicnn import backend

    devices = ["cpu", "gpu"] if args.device == "all" else [args.device]
    if "gpu" in devices and not backend.gpu_available():
        if args.device == "gpu":
            parser.error("--device gpu: CuPy is not installed or sees no GPU")
        devices.remove("gpu")
    machine = machine_name()
    if "gpu" in devices:
        name = backend.xp().cuda.runtime.getDeviceProperties(0)["name"].decode()
        machine += "-" + "".join(c if c.isalnum() else "-" for c in name).strip("-").lower()
    results = {"machine": machine, "cpu_model": cpu_model(), "cpu_count": os.cpu_count(),
               "python": platform.python_version(), "numpy": np.__version__,
               "numba": numba.__version__, "batch": args.batch, "vgg_batch": args.vgg_batch,
               "repeats": args.repeats,
               "command": command_line("benchmarks.run", argv),
               "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "load_before": [round(v, 2) for v in os.getloadavg()], "devices": []}
    for device in devices:
        results["devices"].append(device_section(device, args))
    results["load_after"] = [round(v, 2) for v in os.getloadavg()]
    results["ratios"] = {s["device"]: ratios(s) for s in results["devices"]}
    results["gpu_over_cpu"] = {w: gpu / cpu for w, (cpu, gpu) in gpu_speedups(results).items()}

    stem = os.path.join(output_folder(args, "bench"), f"bench_{machine}")
    atomic_write_text(stem + ".json", json.dumps(results, indent=1))
    atomic_write_text(stem + ".md", markdown(results))
    chart(results, stem + ".png")
    print(markdown(results))
    print(f"wrote {stem}.md, .json, .png")


if __name__ == "__main__":
    main()
