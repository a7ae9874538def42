"""Fashion-MNIST from its IDX files, as Keras's ``fashion_mnist.load_data()`` returns it.

    (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
    # x: uint8 (60000, 28, 28) and (10000, 28, 28); y: uint8 (N,) in 0..9

The IDX format (http://yann.lecun.com/exdb/mnist/): a 4-byte magic number
``0x00 0x00 <type> <ndim>``, then ``ndim`` big-endian uint32 sizes, then the
values, big-endian, in C order. Files may be gzipped (``*.gz``) or not.
"""
from __future__ import annotations

import gzip
import os

import numpy as np

from ..locate import FASHION_MNIST_PACKAGE_FOLDER as DEFAULT_PATH
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot")
FILES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
         "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
INSTALL_HINT = ("install it with: apt-get update && apt-get install dataset-fashion-mnist "
                "(or give load_fashion_mnist the folder holding the four IDX files)")
# IDX type byte -> big-endian NumPy dtype.
IDX_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
             0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def parse_idx(data, name="IDX data"):
    """``bytes`` of one IDX file -> a native-endian array of the shape its header gives."""
    if len(data) < 4:
        raise ValueError(f"{name}: {len(data)} bytes is too short for an IDX header")
    zero1, zero2, type_code, ndim = data[0], data[1], data[2], data[3]
    if zero1 != 0 or zero2 != 0 or type_code not in IDX_TYPES or ndim == 0:
        raise ValueError(f"{name}: bad IDX magic number {data[:4].hex()} (expected 0000 then "
                         f"a type byte in {[hex(t) for t in IDX_TYPES]} and ndim >= 1); "
                         "the file is corrupt or not IDX")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise ValueError(f"{name}: header needs {header_size} bytes, the file has {len(data)}")
    shape = tuple(int(v) for v in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_TYPES[type_code]
    expected = header_size + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(f"{name}: header says shape {shape} of {dtype.name} "
                         f"({expected} bytes in all) but the file has {len(data)} bytes")
    values = np.frombuffer(data, dtype=dtype, offset=header_size).reshape(shape)
    return values.astype(dtype.newbyteorder("="))     # native order, writable copy


def read_idx(path):
    """Parse the IDX file at ``path`` (gzipped when it starts with gzip's magic bytes)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as error:
            raise ValueError(f"{path}: broken gzip data ({error})") from error
    return parse_idx(data, name=path)


def _find(path, base):
    for name in (base + ".gz", base):
        candidate = os.path.join(path, name)
        if os.path.isfile(candidate):
            return candidate
    raise FileNotFoundError(f"Fashion-MNIST file {base}[.gz] not found in {path!r}; "
                            f"{INSTALL_HINT}")


def load_fashion_mnist(path=DEFAULT_PATH):
    """``((x_train, y_train), (x_test, y_test))``: uint8 images (N, 28, 28), uint8 labels (N,)."""
    if not os.path.isdir(path):
        raise FileNotFoundError(f"Fashion-MNIST folder {path!r} not found; {INSTALL_HINT}")
    arrays = {key: read_idx(_find(path, base)) for key, base in FILES.items()}
    return checked_splits(arrays, "Fashion-MNIST", path)


def checked_splits(arrays, dataset, where, classes=len(CLASS_NAMES)):
    """``((x_train, y_train), (x_test, y_test))`` from the four arrays of an MNIST-style
    dataset (keys x_train, y_train, x_test, y_test), after checking that they fit
    together as Keras returns them: uint8 images (N, 28, 28), uint8 labels (N,) < classes."""
    for split in ("train", "test"):
        x, y = arrays["x_" + split], arrays["y_" + split]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"{dataset} {split} in {where!r}: expected images (N, 28, 28) and "
                             f"labels (N,), got shapes {x.shape} and {y.shape}")
        if x.dtype != np.uint8 or y.dtype != np.uint8:
            raise ValueError(f"{dataset} {split} in {where!r}: expected uint8 images and "
                             f"labels, got {x.dtype} and {y.dtype}")
        if y.size and y.max() >= classes:
            raise ValueError(f"{dataset} {split} in {where!r}: label {int(y.max())} is not a "
                             f"class index 0..{classes - 1}")
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
