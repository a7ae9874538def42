"""Images as Keras's ``keras.preprocessing.image`` has them, channels last.

    img = load_img("cat.0.jpg", target_size=(150, 150))    # a PIL image
    x = img_to_array(img)                                  # float32 (150, 150, 3), 0..255
    array_to_img(x / 255)                                  # back to a PIL image

``load_img``, ``img_to_array``, ``array_to_img`` and ``save_img`` follow Keras 3's code
(keras/src/utils/image_utils.py) step for step, so the same file gives the same array.
:class:`ImageDataGenerator` and :class:`DirectoryIterator` are minicnn's own
(:mod:`minicnn.data`), with Keras's arguments.
"""
from __future__ import annotations

import io
import os
import pathlib
import warnings

import numpy as np
from PIL import Image

from ..data.augment import ImageDataGenerator
from ..data.iterator import DirectoryIterator

DATA_FORMATS = ("channels_last", "channels_first")
COLOR_MODES = ("grayscale", "rgb", "rgba")
INTERPOLATIONS = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
                  "bicubic": Image.Resampling.BICUBIC, "hamming": Image.Resampling.HAMMING,
                  "box": Image.Resampling.BOX, "lanczos": Image.Resampling.LANCZOS}

_warned_grayscale = False


def _data_format(data_format):
    """None -> "channels_last" (minicnn's only layout, Keras's default)."""
    if data_format is None:
        return "channels_last"
    if data_format not in DATA_FORMATS:
        raise ValueError(f"data_format must be one of {DATA_FORMATS} or None, "
                         f"got {data_format!r}")
    return data_format


def load_img(path, color_mode="rgb", target_size=None, interpolation="nearest",
             keep_aspect_ratio=False, grayscale=False):
    """An image file -> a PIL image, as ``keras.utils.load_img``.

    path: a file path (str, bytes, pathlib.Path) or an ``io.BytesIO``. The file is read
        whole and closed at once (the image keeps no open file).
    color_mode: "rgb" (3 channels), "rgba" (4), or "grayscale" (8-bit "L"; 16- and
        32-bit grayscale images are kept as they are, as Keras keeps them).
    target_size: None (the file's size) or (height, width), resized with
        ``interpolation``: "nearest" (Keras's default), "bilinear", "bicubic",
        "lanczos", "box" or "hamming".
    keep_aspect_ratio: crop the largest centred box of the target's aspect ratio
        before resizing, instead of stretching.
    grayscale: Keras 2's way of asking for ``color_mode="grayscale"`` (warns once).
    """
    global _warned_grayscale
    if grayscale:
        if not _warned_grayscale:
            _warned_grayscale = True
            warnings.warn("load_img(grayscale=True) is Keras 2's name; Keras 3 writes "
                          "load_img(color_mode='grayscale')", UserWarning, stacklevel=2)
        color_mode = "grayscale"
    if color_mode not in COLOR_MODES:
        raise ValueError(f"color_mode must be one of {COLOR_MODES}, got {color_mode!r}")
    if isinstance(path, io.BytesIO):
        img = Image.open(path)
    elif isinstance(path, (str, bytes, pathlib.Path)):
        # Read the bytes and close the file: a PIL image opened on a path keeps the file
        # open until it is decoded, and a loop over thousands of photos runs out of handles.
        with open(os.fspath(path), "rb") as f:
            img = Image.open(io.BytesIO(f.read()))
    else:
        raise TypeError(f"load_img: path should be a path (str, bytes, pathlib.Path) or an "
                        f"io.BytesIO, got {type(path).__name__}")

    if color_mode == "grayscale":
        if img.mode not in ("L", "I;16", "I"):      # 16/32-bit grayscale stays as it is
            img = img.convert("L")
    elif color_mode == "rgba":
        if img.mode != "RGBA":
            img = img.convert("RGBA")
    elif img.mode != "RGB":
        img = img.convert("RGB")

    if target_size is None:
        return img
    width_height = (int(target_size[1]), int(target_size[0]))   # PIL counts width first
    if img.size == width_height:
        return img
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"unknown interpolation {interpolation!r}: expected one of "
                         f"{', '.join(INTERPOLATIONS)}")
    resample = INTERPOLATIONS[interpolation]
    if not keep_aspect_ratio:
        return img.resize(width_height, resample)
    # The largest box of the target's aspect ratio, centred (integer arithmetic as Keras).
    width, height = img.size
    target_width, target_height = width_height
    crop_height = min(height, (width * target_height) // target_width)
    crop_width = min(width, (height * target_width) // target_height)
    top = (height - crop_height) // 2
    left = (width - crop_width) // 2
    return img.resize(width_height, resample,
                      box=[left, top, left + crop_width, top + crop_height])


def img_to_array(img, data_format=None, dtype=None):
    """A PIL image -> an array (height, width, channels), float32 unless ``dtype`` says
    otherwise, values as stored (0..255 for 8-bit images), as ``keras.utils.img_to_array``.
    A grayscale image gets a channel axis of 1. ``data_format="channels_first"`` gives
    (channels, height, width)."""
    data_format = _data_format(data_format)
    x = np.asarray(img, dtype=dtype or "float32")
    if x.ndim == 2:
        x = x.reshape(x.shape[0], x.shape[1], 1)
    elif x.ndim != 3:
        raise ValueError(f"img_to_array: unsupported image shape {x.shape} (expected a "
                         "2-D grayscale or 3-D colour image)")
    return x.transpose(2, 0, 1) if data_format == "channels_first" else x


def array_to_img(x, data_format=None, scale=True, dtype=None):
    """An array (height, width, channels) -> a PIL image, as ``keras.utils.array_to_img``.

    scale: stretch the values to 0..255 first (minimum -> 0, maximum -> 255), so that
        an image in 0..1, or standardized, shows; ``scale=False`` keeps the values as
        they are (they must be 0..255 then). Values are truncated to integers.
    Channels: 3 -> "RGB", 4 -> "RGBA", 1 -> "L" (or "I", 32-bit, when values exceed 255).
    """
    data_format = _data_format(data_format)
    x = np.asarray(x, dtype=dtype or "float32")
    if x.ndim != 3:
        raise ValueError(f"array_to_img expects one image of rank 3 (height, width, "
                         f"channels), got an array of shape {x.shape}")
    if data_format == "channels_first":
        x = x.transpose(1, 2, 0)
    if scale:
        x = x - np.min(x)                           # a new array: the caller's is untouched
        x_max = np.max(x)
        if x_max != 0:
            x /= x_max
        x *= 255
    channels = x.shape[2]
    if channels == 4:
        return Image.fromarray(x.astype("uint8"), "RGBA")
    if channels == 3:
        return Image.fromarray(x.astype("uint8"), "RGB")
    if channels == 1:
        if np.max(x) > 255:                         # 32-bit integer grayscale, PIL's "I"
            return Image.fromarray(x[:, :, 0].astype("int32"), "I")
        return Image.fromarray(x[:, :, 0].astype("uint8"), "L")
    raise ValueError(f"array_to_img: unsupported number of channels {channels} "
                     "(expected 1, 3 or 4)")


def save_img(path, x, data_format=None, file_format=None, scale=True, **kwargs):
    """Write the array ``x`` as an image file, as ``keras.utils.save_img``: converted
    by :func:`array_to_img`; the format from ``file_format`` or the file's extension
    (a JPEG gets an RGBA image as RGB, with a warning); ``kwargs`` go to PIL's save."""
    if file_format is None and isinstance(path, (str, pathlib.Path)):
        file_format = pathlib.Path(path).suffix[1:].lower()
    if file_format and file_format.lower() == "jpg":
        file_format = "jpeg"                        # Pillow's name for it
    img = array_to_img(x, data_format=data_format, scale=scale)
    if img.mode == "RGBA" and file_format == "jpeg":
        warnings.warn("The JPEG format does not support RGBA images, converting to RGB.",
                      stacklevel=2)
        img = img.convert("RGB")
    img.save(path, format=file_format, **kwargs)


__all__ = ["DirectoryIterator", "ImageDataGenerator", "array_to_img", "img_to_array",
           "load_img", "save_img"]
