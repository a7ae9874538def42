"""The speed benchmark, shipped with the package so that ``minicnn bench`` runs anywhere.

    minicnn bench --device cpu --quick --no-references --out /tmp/bench
    python -m minicnn.bench ...          # the same
    python -m benchmarks.run ...         # the same, from a source checkout

- :mod:`.runner`: what is measured (the matmul ceiling, each layer, the end-to-end
  workloads in fresh processes) and the command line;
- :mod:`.workloads`: the end-to-end workloads in minicnn, Keras and PyTorch, one per
  process (``python -m minicnn.bench.workloads``);
- :mod:`.report`: the Markdown report and the chart;
- :mod:`.output`: where results go, the machine's name and the recorded command.

Keras (on TensorFlow) and PyTorch are compared when they are installed; otherwise the
report lists them as skipped, with the reason. Only ``minicnn.cli`` imports this package:
the library never depends on its benchmark.
"""


def main(argv=None, program="python -m minicnn.bench"):
    """Run the benchmark with command-line arguments ``argv``; see :mod:`.runner`."""
    from .runner import main as run_main

    return run_main(argv, program=program)
