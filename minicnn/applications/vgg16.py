"""VGG16's convolutional base, and the preprocessing its ImageNet weights expect.

The network (Simonyan and Zisserman, "Very Deep Convolutional Networks for
Large-Scale Image Recognition", 2014), as ``keras.applications.VGG16`` builds it
with ``include_top=False``. Every convolution is 3x3, stride 1, "same" padding
and ReLU; every pool is 2x2 with stride 2, halving height and width (rounding
down)::

    block   layers                                   output for a 150x150x3 input
    1       block1_conv1, block1_conv2   (64)        block1_pool  (75, 75, 64)
    2       block2_conv1, block2_conv2   (128)       block2_pool  (37, 37, 128)
    3       block3_conv1 .. block3_conv3 (256)       block3_pool  (18, 18, 256)
    4       block4_conv1 .. block4_conv3 (512)       block4_pool  (9, 9, 512)
    5       block5_conv1 .. block5_conv3 (512)       block5_pool  (4, 4, 512)

A 3x3 convolution from C_in to C_out channels has 9*C_in*C_out + C_out
parameters; the thirteen add up to 14,714,688.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..layers import Conv2D, MaxPooling2D
from ..locate import VGG16_WEIGHTS_HELP, find_vgg16_weights
from ..models import Sequential

# (number of convolutions, filters) for each of the five blocks
VGG16_BLOCKS = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))

# ImageNet channel means in B, G, R order, as Keras's "caffe" preprocessing subtracts them.
IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)

PREPROCESSING_MODES = ("caffe", "rescale")


class WeightsNotFoundError(FileNotFoundError, ValueError):
    """``VGG16(weights="imagenet")`` found no weight file. A FileNotFoundError; also a
    ValueError, which is what it raised before it looked in Keras's folders."""


def VGG16(include_top=False, weights=None, input_shape=(150, 150, 3), name="vgg16"):
    """The convolutional base of VGG16 as a minicnn ``Sequential``.

    include_top: must be False: only the convolutional base is provided (add
        your own classifier on top, as the cats vs dogs tutorial does).
    weights: None (random initialisation); "imagenet": Keras's ImageNet "notop"
        weight file, found by :func:`minicnn.locate.find_vgg16_weights`
        ($MINICNN_VGG16_WEIGHTS, then ``$KERAS_HOME/models/`` or ``~/.keras/models/``
        under Keras's file name; never downloaded); or the path of a Keras HDF5 weight
        file. The ImageNet weights expect inputs prepared by ``preprocess_input(x, "caffe")``.
    input_shape: (height, width, 3), height and width at least 32.

    Unlike Keras, the defaults are include_top=False and weights=None (Keras's are
    True and "imagenet"), and the input size is fixed (Keras's (None, None, 3) is not).

    Output shape: (height // 32, width // 32, 512), e.g. (4, 4, 512) for 150x150.
    """
    if include_top:
        raise ValueError(
            "VGG16(include_top=True) is not available: minicnn provides only the "
            "convolutional base (include_top=False), and loads only Keras's notop weights. "
            "Add a classifier on top of it, e.g. "
            "Flatten, Dense(256, activation='relu'), Dense(1, activation='sigmoid').")
    if input_shape is None:
        raise ValueError("VGG16 needs input_shape=(height, width, 3): a minicnn model has one "
                         "input size (Keras's (None, None, 3) is not supported)")
    input_shape = tuple(int(d) for d in input_shape)
    if len(input_shape) != 3 or input_shape[2] != 3 or min(input_shape[:2]) < 32:
        raise ValueError(f"VGG16 expects input_shape (height, width, 3) with height and "
                         f"width at least 32, got {input_shape}")
    if weights is not None:
        weights = _weight_file(weights)             # before building: errors come fast

    layers = []
    for block, (convs, filters) in enumerate(VGG16_BLOCKS, start=1):
        for i in range(1, convs + 1):
            layers.append(Conv2D(filters, 3, padding="same", activation="relu",
                                 name=f"block{block}_conv{i}",
                                 input_shape=input_shape if not layers else None))
        layers.append(MaxPooling2D(2, strides=2, name=f"block{block}_pool"))
    model = Sequential(layers, name=name)

    if weights is not None:
        from ..weights import load_weights

        load_weights(model, weights)
    return model


def _weight_file(weights):
    """The path of the weight file that ``weights`` ("imagenet" or a path) names; a
    one-line error saying where to put it when there is none."""
    if isinstance(weights, str) and weights == "imagenet":
        found = find_vgg16_weights()
        if found is None:
            raise WeightsNotFoundError(
                "VGG16(weights='imagenet') found no weight file (minicnn never downloads); "
                f"{VGG16_WEIGHTS_HELP}; or pass the path of the Keras weight file as weights=")
        return found[0]
    return find_vgg16_weights(weights)[0]           # a missing file: FileNotFoundError


def preprocess_input(x, mode="caffe"):
    """Prepare RGB images with pixel values in 0..255 for a network.

    x: (..., 3) array of RGB images, e.g. (N, H, W, 3), NumPy or CuPy, any
    numeric dtype. Returns a new float32 array of the same shape and module;
    ``x`` itself is never modified.

    mode="caffe" (the default): what VGG16's ImageNet weights were trained on,
        identical to ``keras.applications.vgg16.preprocess_input``:
        channels reversed RGB -> BGR, then the ImageNet mean of each channel
        subtracted (B 103.939, G 116.779, R 123.68); no scaling.
    mode="rescale": x / 255, as the cats vs dogs tutorial fed its images (it
        runs, but does not match the weights' training inputs).
    """
    if mode not in PREPROCESSING_MODES:
        raise ValueError(f"unknown preprocessing mode {mode!r}: expected one of "
                         f"{PREPROCESSING_MODES}")
    xp = get_array_module(x)
    x = xp.asarray(x)
    if x.ndim < 1 or x.shape[-1] != 3:
        raise ValueError(f"preprocess_input expects RGB images with 3 channels last, "
                         f"got shape {tuple(x.shape)}")
    if mode == "rescale":
        return x.astype(np.float32) / np.float32(255.0)
    bgr = x[..., ::-1].astype(np.float32)          # a copy: reversing makes a view, astype copies
    return bgr - xp.asarray(IMAGENET_BGR_MEAN, dtype=np.float32)


__all__ = ["IMAGENET_BGR_MEAN", "PREPROCESSING_MODES", "VGG16", "VGG16_BLOCKS",
           "WeightsNotFoundError", "preprocess_input"]
