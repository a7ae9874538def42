"""The benchmark's report: Markdown tables, the ratios to the references, the chart."""
from __future__ import annotations

from .workloads import WORKLOADS

WORKLOAD_TITLES = {"tutorial_train": "cats vs dogs net: training step",
                   "tutorial_infer": "cats vs dogs net: inference",
                   "vgg16_extract": "VGG16 conv base: feature extraction"}


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
    if results.get("smoke"):
        lines[-1:-1] = ["- **--smoke**: a check that the benchmark runs (batch 2, one repeat, "
                        "one workload), not a measurement"]
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
        skipped = section.get("skipped", [])
        if skipped:
            lines += ["", "Skipped: " + "; ".join(f"{s['framework']} ({s['reason']})"
                                                   for s in skipped) + "."]
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
