#!/usr/bin/env bash
# benchmarks/gpu_check.sh: the GPU checks of minicnn in one command (issue 20).
#
# On a machine with an NVIDIA GPU and CuPy it
#   1. checks that CuPy imports and sees a CUDA device (else exit 3),
#   2. records the environment (date, commit, nvidia-smi, Python and library versions, CPU),
#   3. runs the whole test suite with the GPU as the default device (minicnn makes the GPU
#      the default device by itself when CuPy sees one; see README "Testing"),
#   4. runs the speed benchmark on CPU and GPU, `python3 -m benchmarks.run --device all`.
#      Where torch is installed its report compares against PyTorch twice on the GPU
#      (names from minicnn/bench/workloads.py RUNNERS and minicnn/bench/report.py):
#        torch       PyTorch in true float32, TF32 off (cudnn.allow_tf32 and
#                    cuda.matmul.allow_tf32 False), the same arithmetic as minicnn's cuBLAS SGEMM
#        torch-tf32  PyTorch's default, TF32 tensor-core convolutions (10-bit mantissas)
#   5. writes a summary, and prints it.
# A failing test suite does not stop the benchmark; the script then exits 1 at the end.
#
# Usage:
#   bash benchmarks/gpu_check.sh OUTDIR [--force] [--quick] [--cpu-rehearsal]
#     OUTDIR           where everything goes; refused if it exists and is not empty,
#                      unless --force (files of the same names are then overwritten,
#                      nothing else is removed)
#     --quick          passed to benchmarks.run (fewer repeats, VGG16 at batch 8)
#     --cpu-rehearsal  no GPU needed: skips the CuPy check and runs a tiny version of each
#                      step on the CPU (one test file; the benchmark's --smoke run without
#                      references), to test this script itself
# It may be called from any folder: it works from the repository root (this file's
# parent's parent). It uses `python3` (or $PYTHON); if that cannot import this checkout's
# minicnn, PYTHONPATH is set to the repository root (nothing is installed).
#
# Output files in OUTDIR:
#   environment.txt  date -u, git commit, nvidia-smi, Python, numpy/cupy/numba/torch
#                    versions ("missing" if not importable), CPU model, core count
#   gpu_tests.txt    the pytest log (`python3 -m pytest -q -rs -p no:cacheprovider`)
#   bench_log.txt    the benchmark's log
#   bench/           the benchmark's report: bench_<machine>.md, .json, .png
#   summary.txt      the pytest summary line, both exit codes, the report files
#
# Time: the device machines' README limits one command to 10 minutes (and a session's
# device time to 15 minutes), so the test suite and the benchmark should each fit in that:
# the suite took a few minutes on an H100; the full benchmark may not fit, `--quick`
# (passed through to benchmarks.run) should. If the whole script must fit in one command,
# use --quick; else run the two steps as separate commands: the script prints each one
# on its "== tests:" and "== benchmark:" lines.
#
# Committing the results: keep OUTDIR outside the checkout while it runs (the tests check
# that `git status` does not change under them), e.g. /tmp/gpu_check, then copy the small
# files into benchmarks/results/gpu_check_<date>/ (date as YYYY-MM-DD):
#   mkdir -p benchmarks/results/gpu_check_2025-01-31
#   cp OUTDIR/*.txt OUTDIR/bench/*.md OUTDIR/bench/*.json OUTDIR/bench/*.png \
#      benchmarks/results/gpu_check_2025-01-31/
# the .txt logs and the report files only: no model weights, datasets or other large files.

set -u

USAGE="usage: bash benchmarks/gpu_check.sh OUTDIR [--force] [--quick] [--cpu-rehearsal]"
PYTHON=${PYTHON:-python3}
export PYTHONUNBUFFERED=1

OUTDIR=""
FORCE=0
QUICK=0
REHEARSAL=0

parse_arguments() {
    local argument
    for argument in "$@"; do
        case "$argument" in
            --force) FORCE=1 ;;
            --quick) QUICK=1 ;;
            --cpu-rehearsal) REHEARSAL=1 ;;
            -h|--help) echo "$USAGE"; exit 0 ;;
            -*) echo "gpu_check.sh: unknown option $argument" >&2; echo "$USAGE" >&2; exit 2 ;;
            *)
                if [ -n "$OUTDIR" ]; then
                    echo "gpu_check.sh: one OUTDIR only (got '$OUTDIR' and '$argument')" >&2
                    echo "$USAGE" >&2
                    exit 2
                fi
                OUTDIR=$argument ;;
        esac
    done
    if [ -z "$OUTDIR" ]; then
        echo "gpu_check.sh: missing OUTDIR" >&2
        echo "$USAGE" >&2
        exit 2
    fi
}

refuse_non_empty_output_folder() {
    # Nothing of a user's is overwritten without --force. OUTDIR is made absolute here,
    # before the cd to the repository root.
    if [ -e "$OUTDIR" ] && [ ! -d "$OUTDIR" ]; then
        echo "gpu_check.sh: $OUTDIR exists and is not a folder" >&2
        exit 2
    fi
    if [ -d "$OUTDIR" ] && [ -n "$(ls -A "$OUTDIR")" ] && [ "$FORCE" -ne 1 ]; then
        echo "gpu_check.sh: $OUTDIR exists and is not empty; choose another folder, or" \
             "add --force to write into it (files of the same names are overwritten)" >&2
        exit 2
    fi
    case "$OUTDIR" in
        /*) ;;
        *) OUTDIR="$(pwd)/$OUTDIR" ;;
    esac
}

create_output_folder() {
    mkdir -p "$OUTDIR" || exit 2
    OUTDIR=$(cd "$OUTDIR" && pwd -P)
    case "$OUTDIR/" in
        "$REPO"/*) echo "note: OUTDIR is inside the checkout; tests that compare" \
                        "'git status' before and after may see its files appear" ;;
    esac
}

go_to_repository_root() {
    cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
    REPO=$(pwd -P)
}

require_cuda_device() {
    if [ "$REHEARSAL" -eq 1 ]; then
        echo "CPU rehearsal: the CuPy/GPU check is skipped, every step runs small on the CPU"
        return
    fi
    if ! "$PYTHON" -c 'import cupy; assert cupy.cuda.runtime.getDeviceCount() > 0' 2>/dev/null; then
        echo "gpu_check.sh: no GPU: CuPy does not import or sees no CUDA device" \
             "($PYTHON -c 'import cupy; assert cupy.cuda.runtime.getDeviceCount() > 0' failed)." >&2
        echo "Run this on a machine with an NVIDIA GPU and CuPy, or add --cpu-rehearsal" \
             "to test the script on the CPU." >&2
        exit 3
    fi
}

make_minicnn_importable() {
    # From a neutral folder, so that the current folder does not count: test subprocesses
    # run elsewhere and must find this checkout's minicnn too.
    local found
    found=$(cd / && "$PYTHON" -c 'import os, minicnn; print(os.path.dirname(os.path.dirname(os.path.realpath(minicnn.__file__))))' 2>/dev/null)
    if [ "$found" != "$REPO" ]; then
        export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
        echo "note: $PYTHON does not import this checkout's minicnn${found:+ (it imports $found)};" \
             "PYTHONPATH=$PYTHONPATH"
    fi
}

warn_about_optional_packages() {
    local module
    for module in tensorboardX tensorboard; do
        if ! "$PYTHON" -c "import $module" 2>/dev/null; then
            echo "note: $module is missing: the TensorBoard tests will skip or fail"
        fi
    done
}

record_environment() {
    local file="$OUTDIR/environment.txt"
    {
        echo "date -u: $(date -u)"
        if git rev-parse HEAD >/dev/null 2>&1; then
            echo "git commit: $(git rev-parse HEAD)"
            echo "uncommitted changes (git status --porcelain lines): $(git status --porcelain | wc -l)"
        else
            echo "git commit: (not a git checkout)"
        fi
        echo "python: $("$PYTHON" --version 2>&1) ($(command -v "$PYTHON"))"
        "$PYTHON" - <<'EOF'
import importlib
for name in ("numpy", "cupy", "numba", "torch"):
    try:
        module = importlib.import_module(name)
        print(f"{name}: {getattr(module, '__version__', 'unknown version')}")
    except Exception:
        print(f"{name}: missing")
EOF
        echo "CPU model: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)"
        echo "cores (nproc): $(nproc)"
        echo "PYTHONPATH: ${PYTHONPATH:-(unset)}"
        echo
        if command -v nvidia-smi >/dev/null 2>&1; then
            echo "nvidia-smi:"
            nvidia-smi 2>&1
        else
            echo "nvidia-smi: not present"
        fi
    } > "$file"
    echo "== environment ($file)"
    cat "$file"
}

# run_logged LABEL LOG COMMAND...: run COMMAND, its output to the screen and to LOG;
# its exit code in LAST_RC (a failure does not stop the script).
run_logged() {
    local label=$1 log=$2
    shift 2
    echo "== $label: $* > $log"
    set -o pipefail
    "$@" 2>&1 | tee "$log"
    LAST_RC=$?
    set +o pipefail
    echo "== $label exit code: $LAST_RC"
}

run_test_suite() {
    local command
    if [ "$REHEARSAL" -eq 1 ]; then
        command=("$PYTHON" -m pytest -q tests/test_relu_engine.py)
    else
        command=("$PYTHON" -m pytest -q -rs -p no:cacheprovider)
    fi
    run_logged tests "$OUTDIR/gpu_tests.txt" "${command[@]}"
    TESTS_RC=$LAST_RC
}

run_benchmark() {
    local command
    if [ "$REHEARSAL" -eq 1 ]; then
        command=("$PYTHON" -m benchmarks.run --device cpu --smoke --no-references --out "$OUTDIR/bench")
    else
        command=("$PYTHON" -m benchmarks.run --device all --out "$OUTDIR/bench")
    fi
    if [ "$QUICK" -eq 1 ]; then
        command+=(--quick)
    fi
    run_logged benchmark "$OUTDIR/bench_log.txt" "${command[@]}"
    BENCH_RC=$LAST_RC
}

write_summary() {
    local file="$OUTDIR/summary.txt"
    {
        echo "gpu_check.sh summary ($(date -u))"
        if [ "$REHEARSAL" -eq 1 ]; then
            echo "mode: CPU rehearsal (not a GPU check)"
        fi
        echo "pytest: $(tail -n 1 "$OUTDIR/gpu_tests.txt" 2>/dev/null)"
        echo "tests exit code: $TESTS_RC"
        echo "benchmark exit code: $BENCH_RC"
        echo "report files under $OUTDIR/bench:"
        if [ -d "$OUTDIR/bench" ]; then
            (cd "$OUTDIR/bench" && find . -type f | sed 's|^\./|  |' | sort)
        else
            echo "  (none)"
        fi
    } > "$file"
    echo "== summary ($file)"
    cat "$file"
}

main() {
    parse_arguments "$@"
    refuse_non_empty_output_folder
    go_to_repository_root
    require_cuda_device
    create_output_folder
    make_minicnn_importable
    warn_about_optional_packages
    record_environment
    TESTS_RC=1
    BENCH_RC=1
    run_test_suite
    run_benchmark
    write_summary
    if [ "$TESTS_RC" -ne 0 ] || [ "$BENCH_RC" -ne 0 ]; then
        exit 1
    fi
}

main "$@"
