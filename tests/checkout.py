"""The repository checkout the tests run in, and what ``git status`` says of it.

The tests that run commands and examples with their default options check that
nothing tracked or unignored changed: results go to runs/ (ignored by git), never into
examples/output/ or benchmarks/results/.
"""
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def git_status():
    """The set of ``git status --porcelain`` lines (changed, deleted or new files that
    git does not ignore), or None when REPO is not a git checkout."""
    try:
        done = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"],
                              cwd=REPO, capture_output=True, text=True, timeout=60)
    except OSError:   # no git at all
        return None
    return set(done.stdout.splitlines()) if done.returncode == 0 else None
