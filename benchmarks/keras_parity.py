"""minicnn next to Keras 3, case by case: how far apart the numbers are, and the time each took.

    python -m benchmarks.keras_parity           # print the table
    python -m benchmarks.keras_parity --write   # and write benchmarks/results/keras_parity.txt

The cases are those of the Keras reference tests (``tests/keras_reference/cases.py``):
the same layer, loss, optimizer or model is built in both frameworks with the same
weights and fed the same float32 inputs. For each case the table gives, per kind of
result, the largest absolute difference and the relative one (that difference divided
by the largest Keras value), and the seconds each framework spent on the case's work.
Run from the repository root (``tests`` must be importable). Needs the dev extra.
"""
from __future__ import annotations

import argparse
import datetime
import platform
import sys

import numpy as np

import minicnn
from minicnn.backend import device
from minicnn.io_utils import atomic_write_text
from tests.keras_reference.cases import CASE_GROUPS, TOLERANCES, keras_modules

RESULT_PATH = "benchmarks/results/keras_parity.txt"
KINDS = ("output", "gradient", "weights")
HEADINGS = ("outputs", "gradients", "weights")


def _pair(worst):
    return ("-", "-") if worst is None else (f"{worst[0]:.1e}", f"{worst[1]:.1e}")


def _ms(seconds):
    return f"{seconds * 1e3:.1f}"


def run_cases(repeats):
    """[(group, [CaseResult, ...]), ...]; each case is run ``repeats`` times and keeps the
    fastest timings (the first run of a case pays one-off costs such as TF start-up)."""
    results = []
    for group, cases in CASE_GROUPS.items():
        group_results = []
        for case in cases:
            runs = [case.run() for _ in range(repeats)]
            result = runs[-1]
            result.seconds_minicnn = min(r.seconds_minicnn for r in runs)
            result.seconds_keras = min(r.seconds_keras for r in runs)
            group_results.append(result)
            print(".", end="", file=sys.stderr, flush=True)
        results.append((group, group_results))
    print(file=sys.stderr)
    return results


def table(results):
    """The report as text: a header, then one row per case, grouped."""
    tf, keras = keras_modules()
    name_width = max(len(r.name) for _, group in results for r in group)
    columns = ["case".ljust(name_width)]
    for heading in HEADINGS:
        columns.append(f"{heading + ' abs':>13} {'rel':>8}")
    columns += [f"{'minicnn ms':>10}", f"{'keras ms':>9}", "agree"]
    header_row = "  ".join(columns)
    lines = [
        "minicnn against Keras 3 (TensorFlow CPU backend), same weights, same float32 inputs",
        f"minicnn {minicnn.__version__} on {device()}, numpy {np.__version__}, "
        f"tensorflow {tf.__version__}, keras {keras.__version__}, python "
        f"{platform.python_version()}, {datetime.date.today().isoformat()}",
        "",
        "abs = max|minicnn - keras| over the compared arrays of that kind; "
        "rel = abs / max|keras|.",
        "outputs: forward outputs, loss values, metrics (tolerance "
        f"{TOLERANCES['output']:g} relative).",
        f"gradients: w.r.t. inputs, weights, predictions (tolerance {TOLERANCES['gradient']:g}).",
        "weights: after optimizer steps or training, per-epoch losses and accuracies, "
        f"weights loaded from files (tolerance {TOLERANCES['weights']:g}).",
        "Times: the case's work in each framework (best of the runs). At these tiny sizes "
        "they measure per-call overhead,",
        "not arithmetic; Keras's model times include tracing its training and prediction "
        "graphs. Speed is benchmarked elsewhere.",
    ]
    failures = []
    for group, group_results in results:
        lines += ["", group, "-" * len(header_row), header_row, "-" * len(header_row)]
        for result in group_results:
            cells = [result.name.ljust(name_width)]
            for kind in KINDS:
                abs_text, rel_text = _pair(result.worst(kind))
                cells.append(f"{abs_text:>13} {rel_text:>8}")
            problems = result.failures()
            failures += problems
            cells += [f"{_ms(result.seconds_minicnn):>10}", f"{_ms(result.seconds_keras):>9}",
                      "yes" if not problems else "NO"]
            lines.append("  ".join(cells))
    count = sum(len(group) for _, group in results)
    lines += ["", f"{count - len(failures)} of {count} cases agree within tolerance"
              if not failures else f"{len(failures)} comparisons out of tolerance:"]
    lines += [f"  {line}" for line in failures]
    return "\n".join(lines) + "\n", not failures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2,
                        help="runs per case; timings are the fastest (default 2)")
    parser.add_argument("--write", action="store_true", help=f"also write {RESULT_PATH}")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    keras_modules()[1].utils.set_random_seed(0)
    text, all_agree = table(run_cases(args.repeats))
    print(text, end="")
    if args.write:
        atomic_write_text(RESULT_PATH, text)
    return 0 if all_agree else 1


if __name__ == "__main__":
    sys.exit(main())
