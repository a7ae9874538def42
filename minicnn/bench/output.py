"""Where benchmark results go, what the machine is called, how the command is recorded.

Shared by every benchmark (``minicnn bench`` and the checkout's ``benchmarks/``
scripts). Results go to a new ``runs/<name>-<date>-<time>`` folder by default, to
``--out DIR``, or with ``--write`` to the committed ``benchmarks/results/`` of a
source checkout: the one this minicnn is imported from (an editable install), else
the one the current folder lies in.
"""
from __future__ import annotations

import os
import platform
import re
import sys

from ..runs import portable_command


def machine_name():
    """A file-name-safe host name plus the core count, e.g. ``box-2cpu``."""
    node = re.sub(r"[^A-Za-z0-9_.-]+", "-", platform.node() or "machine").strip("-")
    return f"{node}-{os.cpu_count()}cpu"


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def command_line(program, argv=None):
    """``program arguments...`` as run, with absolute paths made portable. ``program``
    is a module (``"benchmarks.run"``, recorded as ``python -m benchmarks.run``) or a
    whole command (``"minicnn bench"``)."""
    if " " not in program:
        program = f"python -m {program}"
    return portable_command(program, sys.argv[1:] if argv is None else list(argv))


def is_checkout(folder):
    """A source checkout of minicnn: the package and the benchmarks side by side."""
    return (os.path.isfile(os.path.join(folder, "benchmarks", "run.py"))
            and os.path.isfile(os.path.join(folder, "minicnn", "__init__.py")))


def find_checkout():
    """The source checkout this minicnn is imported from, else the one the current
    folder lies in; None when there is neither."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    candidates = [os.path.dirname(package)]
    folder = os.path.abspath(os.getcwd())
    while True:
        candidates.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return next((folder for folder in candidates if is_checkout(folder)), None)


def results_folder():
    """The committed ``benchmarks/results/`` of the source checkout (see
    :func:`find_checkout`). Raises FileNotFoundError when there is none."""
    checkout = find_checkout()
    if checkout is None:
        raise FileNotFoundError("--write writes into the benchmarks/results/ folder of a "
                                "source checkout and none was found (this minicnn is "
                                "installed, the current folder is not in a clone): "
                                "use --out DIR")
    return os.path.join(checkout, "benchmarks", "results")


def add_output_options(parser, name):
    """--write (the committed results folder) or --out DIR; default a new run folder."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--write", action="store_true",
                       help="write the results into benchmarks/results/ (the committed ones; "
                       "from a source checkout only)")
    where.add_argument("--out", metavar="DIR",
                       help=f"write the results into DIR (default: a new "
                       f"runs/{name}-<date>-<time>)")


def output_folder(args, name):
    """The folder chosen by :func:`add_output_options`, created. Benchmark files are
    named per machine, so an explicit folder may already hold other machines' results."""
    if args.write:
        folder = results_folder()
        os.makedirs(folder, exist_ok=True)
        return folder
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        return args.out
    from ..runs import prepare_run_folder

    return prepare_run_folder(None, default_name=name)
