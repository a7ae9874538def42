"""docs/guide.md's Python blocks run as they are, one after the other (a learner pastes
them into one session), and the by-hand computations they show equal the layer's."""
import contextlib
import io
import re
from pathlib import Path

from float32_error import assert_within, conv_layer_bounds

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "guide.md"


def _blocks():
    return re.findall(r"^```python\n(.*?)^```", GUIDE.read_text(), flags=re.S | re.M)


def test_the_guides_python_blocks_run_and_agree(tmp_path, monkeypatch, cpu_device):
    blocks = _blocks()
    assert len(blocks) >= 4
    monkeypatch.chdir(tmp_path)
    ns = {"__name__": "guide"}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for number, block in enumerate(blocks, 1):
            exec(compile(block, f"{GUIDE.name} block {number}", "exec"), ns)
    assert printed.getvalue().startswith("{'loss': ")
    # By hand, the layer (any engine) and the loops add the same products in other
    # orders: within the float32 bound of each sum (tests/float32_error.py). ReLU changes
    # no magnitude upwards, and the guide's backward by hand takes the layer's own ReLU
    # mask, so no output near 0 can make the masks differ.
    output, grad_input, grads = conv_layer_bounds(ns["x"], ns["kernel"], ns["bias"],
                                                  ns["dout"], (1, 1), "same")
    z = ns["y_by_hand"]
    assert_within(ns["y_layer"], z, output, "layer output")
    assert_within(ns["y_reference"], z[:1], output[:1], "reference engine output")
    assert_within(ns["dx_layer"], ns["dx"], grad_input, "input gradient")
    assert_within(ns["layer"].grads["kernel"], ns["dkernel"], grads["kernel"], "kernel gradient")
