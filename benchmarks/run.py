"""``python -m benchmarks.run``: the speed benchmark of a source checkout.

The benchmark lives in the package (:mod:`minicnn.bench`), so that ``minicnn bench``
runs from an installed minicnn too; this module keeps the command that the committed
results in benchmarks/results/ record. Same options as ``minicnn bench``:

    python -m benchmarks.run --device cpu --quick --no-references
    flock /tmp/minicnn-heavy.lock python -m benchmarks.run --write   # the committed numbers
"""
import sys

from minicnn.bench.report import WORKLOAD_TITLES, chart, gpu_speedups, markdown, ratios  # noqa: F401
from minicnn.bench.runner import (add_arguments, device_section, layer_flops,  # noqa: F401
                                  main, matmul_ceiling, per_layer, references, run,
                                  run_workload, workload_flops)

if __name__ == "__main__":
    sys.exit(main(program="python -m benchmarks.run"))
