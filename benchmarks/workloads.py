"""``python -m benchmarks.workloads FRAMEWORK DEVICE WORKLOAD BATCH REPEATS``: one
end-to-end workload of the speed benchmark, one JSON line. The workloads live in
:mod:`minicnn.bench.workloads`; this module keeps the command that
benchmarks/results/redesign/ records."""
from minicnn.bench.workloads import (IMAGE_SHAPE, RUNNERS, VGG16_BLOCKS,  # noqa: F401
                                     WORKLOADS, main, minicnn_tutorial_net, minicnn_vgg16,
                                     peak_rss_bytes, run_keras, run_minicnn, run_torch)

if __name__ == "__main__":
    main()
