"""``python -m minicnn.bench``: the same as ``minicnn bench``."""
import sys

from .runner import main

sys.exit(main(program="python -m minicnn.bench"))
