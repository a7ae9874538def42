"""Pictures of what a CNN does inside, drawn with matplotlib (Agg, no display needed).

Every function returns a :class:`matplotlib.figure.Figure` and, given
``path``, also saves it as a PNG (written to a temporary file and renamed, so
a file is never left half-written). Figures are built without ``pyplot``, so
nothing piles up in a global figure list and no window ever opens.

* :func:`convolution_demo`: blur and edge filters applied to a photo with
  minicnn's own ``conv2d_forward``: what one convolution *does*;
* :func:`plot_im2col`: how im2col turns every window of a tiny input into one
  row of a matrix, so that a convolution becomes one matrix product;
* :func:`plot_filters` and :func:`plot_feature_maps`: what a trained model
  learned, and what each of its conv layers sees in one image;
* :func:`plot_history` / :func:`plot_histories`: training curves, to spot overfitting;
* :func:`plot_image_grid` and :func:`plot_confusion_matrix`: looking at data
  and at a classifier's mistakes.

The size of every PNG is ``figsize * dpi`` pixels exactly (no tight cropping).
"""
from __future__ import annotations

import math
import os

import numpy as np

DEFAULT_DPI = 90

#: A 3x3 box blur: every output pixel is the mean of its 3x3 neighbourhood.
BOX_BLUR_3 = np.full((3, 3), 1.0 / 9.0, dtype=np.float32)
#: An 8x8 box blur: the mean of a larger window, so a stronger blur.
BOX_BLUR_8 = np.full((8, 8), 1.0 / 64.0, dtype=np.float32)
#: Sobel filter that responds to *vertical* edges (a change from left to right).
SOBEL_VERTICAL = np.array([[-1, 0, 1],
                           [-2, 0, 2],
                           [-1, 0, 1]], dtype=np.float32)
#: Sobel filter that responds to *horizontal* edges (a change from top to bottom).
SOBEL_HORIZONTAL = SOBEL_VERTICAL.T.copy()


# -- figures and files ---------------------------------------------------------------
def _figure(figsize, dpi):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, dpi=dpi)


def save_figure(fig, path, dpi=None):
    """Save ``fig`` as a PNG at ``path`` atomically; returns ``path``."""
    from .io_utils import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi or fig.dpi)
    return path


def _finish(fig, path):
    if path is not None:
        save_figure(fig, path)
    return fig


def _grid_shape(count, ncols):
    ncols = max(1, min(int(ncols), count))
    return math.ceil(count / ncols), ncols


def _show(ax, image, title=None, cmap="gray", **kwargs):
    """Draw one image without axes ticks; (H, W, 1) is shown as grayscale."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    ax.imshow(image, cmap=cmap if image.ndim == 2 else None, **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=8)


# -- a convolution on a real photo -------------------------------------------------------
def load_grayscale(image, max_size=256):
    """A photo as a float32 (H, W) array in [0, 1].

    ``image`` is a file path, or an array (H, W) or (H, W, C) with values in
    [0, 1] or [0, 255]. Paths are shrunk so the longer side is at most ``max_size``.
    """
    if isinstance(image, (str, os.PathLike)):
        from PIL import Image

        if not os.path.isfile(image):
            raise FileNotFoundError(f"no image file at {os.fspath(image)!r}")
        with Image.open(image) as picture:
            picture = picture.convert("L")
            picture.thumbnail((max_size, max_size))
            return np.asarray(picture, dtype=np.float32) / 255.0
    array = np.asarray(image, dtype=np.float32)
    if array.ndim == 3:
        array = array.mean(axis=-1)      # (H, W, C) -> (H, W): the mean of the channels
    if array.ndim != 2:
        raise ValueError(f"expected an image of shape (H, W) or (H, W, C), got {array.shape}")
    if array.max(initial=0.0) > 1.0:
        array = array / 255.0
    return array


def apply_filters(gray, kernels):
    """Cross-correlate a (H, W) image with same-sized (KH, KW) kernels, using
    minicnn's own ``conv2d_forward`` (im2col + one matrix product, 'valid' padding).

    Returns a list of (H-KH+1, W-KW+1) arrays, one per kernel.
    """
    from .ops import conv2d_forward

    gray = np.asarray(gray, dtype=np.float32)
    # The image becomes a batch of one single-channel picture: (H, W) -> (1, H, W, 1),
    # and the kernels the filters of one layer: F x (KH, KW) -> (KH, KW, 1, F).
    x = gray[None, :, :, None]
    kernel = np.stack([np.asarray(k, dtype=np.float32) for k in kernels], axis=-1)[:, :, None, :]
    out, _ = conv2d_forward(x, kernel)                     # (1, OH, OW, F)
    return [out[0, :, :, f] for f in range(out.shape[-1])]


def convolution_outputs(image, max_size=256):
    """The images :func:`convolution_demo` draws, as a dict of 2-D arrays:
    ``original``, ``blur_3x3``, ``blur_8x8``, ``sobel_vertical``, ``sobel_horizontal``
    and ``sobel_magnitude`` (= sqrt(vertical**2 + horizontal**2))."""
    gray = load_grayscale(image, max_size)
    if min(gray.shape) < 8:
        raise ValueError(f"the image must be at least 8x8 pixels for the 8x8 blur, "
                         f"got {gray.shape}")
    blur_3, vertical, horizontal = apply_filters(gray, [BOX_BLUR_3, SOBEL_VERTICAL,
                                                        SOBEL_HORIZONTAL])
    (blur_8,) = apply_filters(gray, [BOX_BLUR_8])
    return {"original": gray, "blur_3x3": blur_3, "blur_8x8": blur_8,
            "sobel_vertical": vertical, "sobel_horizontal": horizontal,
            "sobel_magnitude": np.sqrt(vertical ** 2 + horizontal ** 2)}


def convolution_demo(image, path=None, max_size=256, dpi=DEFAULT_DPI):
    """Six panels: a photo, its 3x3 and 8x8 box blurs, the Sobel vertical and
    horizontal edge responses and the edge magnitude. Figure of 9 x 6 inches."""
    outputs = convolution_outputs(image, max_size)
    titles = {"original": "original (grayscale)", "blur_3x3": "3x3 box blur",
              "blur_8x8": "8x8 box blur", "sobel_vertical": "Sobel: vertical edges",
              "sobel_horizontal": "Sobel: horizontal edges",
              "sobel_magnitude": "edge magnitude"}
    fig = _figure((9, 6), dpi)
    axes = fig.subplots(2, 3)
    for ax, (key, picture) in zip(axes.flat, outputs.items()):
        # Edge responses are signed: a diverging map shows dark-to-light and
        # light-to-dark edges in two colours around a white zero.
        if key in ("sobel_vertical", "sobel_horizontal"):
            limit = float(np.abs(picture).max()) or 1.0
            _show(ax, picture, titles[key], cmap="RdBu_r", vmin=-limit, vmax=limit)
        else:
            _show(ax, picture, titles[key])
    fig.suptitle("What one convolution does (minicnn.ops.conv2d_forward)")
    return _finish(fig, path)


# -- im2col, drawn ---------------------------------------------------------------------
def plot_im2col(x=None, kernel_size=2, strides=1, path=None, dpi=DEFAULT_DPI):
    """A tiny (H, W) input with numbered pixels, beside its im2col matrix.

    Each window of the input and the row it becomes share a colour, so you can
    see that row ``r`` of the matrix is output pixel ``r``'s receptive field,
    read left to right, top to bottom. Default input: 4x4 numbered 0..15, 2x2
    windows. Figure of 10 x 5 inches.
    """
    from matplotlib.patches import Rectangle

    from .ops import im2col

    if x is None:
        x = np.arange(16, dtype=np.float32).reshape(4, 4)
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or x.size > 64:
        raise ValueError(f"plot_im2col draws a small 2-D input (at most 8x8), got shape "
                         f"{x.shape}")
    kh, kw = (kernel_size, kernel_size) if np.isscalar(kernel_size) else kernel_size
    sh, sw = (strides, strides) if np.isscalar(strides) else strides
    # (H, W) -> (1, H, W, 1) -> cols (OH*OW, KH*KW): one row per window.
    cols = im2col(x[None, :, :, None], (kh, kw), (sh, sw))
    out_w = (x.shape[1] - kw) // sw + 1
    from matplotlib import colormaps

    colours = colormaps["tab20"].resampled(max(len(cols), 1))

    fig = _figure((10, 5), dpi)
    ax_in, ax_cols = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.3]})
    ax_in.imshow(np.ones_like(x), cmap="gray", vmin=0, vmax=1)
    for (i, j), value in np.ndenumerate(x):
        ax_in.text(j, i, f"{value:g}", ha="center", va="center", fontsize=9)
    for row in range(len(cols)):
        top, left = (row // out_w) * sh, (row % out_w) * sw
        inset = 0.08 + 0.3 * row / max(len(cols), 1)     # nested frames stay visible
        ax_in.add_patch(Rectangle((left - 0.5 + inset, top - 0.5 + inset), kw - 2 * inset,
                                  kh - 2 * inset, fill=False, lw=1.5, ec=colours(row)))
    ax_in.set_title(f"input {x.shape[0]}x{x.shape[1]}, windows {kh}x{kw}, stride {sh}",
                    fontsize=9)
    ax_in.set_xticks([])
    ax_in.set_yticks([])

    ax_cols.imshow(np.ones_like(cols), cmap="gray", vmin=0, vmax=1, aspect="auto")
    for r in range(len(cols)):
        ax_cols.axhspan(r - 0.5, r + 0.5, color=colours(r), alpha=0.35, lw=0)
    for (r, c), value in np.ndenumerate(cols):
        ax_cols.text(c, r, f"{value:g}", ha="center", va="center", fontsize=8)
    ax_cols.set_yticks(range(len(cols)))
    ax_cols.set_yticklabels([f"window {r}" for r in range(len(cols))], fontsize=7)
    ax_cols.set_xticks(range(cols.shape[1]))
    ax_cols.set_xticklabels([f"({i},{j})" for i in range(kh) for j in range(kw)], fontsize=7)
    ax_cols.set_title(f"im2col matrix {cols.shape[0]}x{cols.shape[1]}: one row per window",
                      fontsize=9)
    fig.suptitle("conv = im2col(x) @ kernel.reshape(KH*KW*C, F)")
    return _finish(fig, path)


# -- inside a trained model ----------------------------------------------------------------
def _conv_layers(model):
    from .layers import Conv2D

    layers = [layer for layer in model.layers if isinstance(layer, Conv2D)]
    if not layers:
        raise ValueError(f"model {model.name!r} has no Conv2D layer to draw")
    return layers


def plot_filters(model, path=None, ncols=8, dpi=DEFAULT_DPI, name=None):
    """The kernels of the first Conv2D layer, one small image per filter.

    A kernel (KH, KW, C, F) gives F pictures; with 3 input channels they are
    drawn in colour (each rescaled to [0, 1]), otherwise as the channel mean.
    The title names the layer by its place in ``model`` and by ``name`` (default
    the model's name): layer names count across all models of a process, so
    ``conv2d_3`` alone does not say which model it belongs to.
    Figure of ncols x rows inches (rows = ceil(F / ncols)).
    """
    from .backend import to_numpy

    layer = _conv_layers(model)[0]
    kernel = to_numpy(layer.params["kernel"])
    filters = kernel.shape[-1]
    rows, ncols = _grid_shape(filters, ncols)
    fig = _figure((ncols, rows + 0.4), dpi)
    axes = np.atleast_1d(fig.subplots(rows, ncols)).ravel()
    for f, ax in enumerate(axes):
        if f >= filters:
            ax.axis("off")
            continue
        weights = kernel[:, :, :, f]
        if weights.shape[-1] != 3:
            weights = weights.mean(axis=-1)
        low, high = weights.min(), weights.max()
        _show(ax, (weights - low) / ((high - low) or 1.0), interpolation="nearest")
    fig.suptitle(f"first conv layer ({layer.name}) of {name or model.name}: {filters} "
                 f"filters of {kernel.shape[0]}x{kernel.shape[1]}", fontsize=9)
    return _finish(fig, path)


def feature_maps(model, image):
    """``[(layer name, maps (OH, OW, F)), ...]`` for every Conv2D layer of ``model``
    applied to one ``image`` (H, W, C) (inference mode: no dropout)."""
    from .backend import to_device, to_numpy
    from .layers import Conv2D

    _conv_layers(model)
    x = to_device(np.asarray(image, dtype=np.float32)[None])   # (H, W, C) -> (1, H, W, C)
    maps = []
    for layer in model.layers:
        x = layer.forward(x, training=False)
        if isinstance(layer, Conv2D):
            maps.append((layer.name, to_numpy(x[0])))
    return maps


def plot_feature_maps(model, image, path=None, max_maps=8, dpi=DEFAULT_DPI, name=None):
    """What every Conv2D layer outputs for one image: one row per conv layer
    (labelled "conv K" and the layer's name), its first ``max_maps`` channels; the
    title names ``name`` (default the model's name).
    Figure of (max_maps + 1) x 1.2*rows inches."""
    maps = feature_maps(model, image)
    image = np.asarray(image, dtype=np.float32)
    fig = _figure((max_maps + 1, 1.2 * len(maps)), dpi)
    axes = np.array(fig.subplots(len(maps), max_maps + 1)).reshape(len(maps), max_maps + 1)
    for row, (layer_name, activation) in enumerate(maps):
        if row == 0:
            _show(axes[0, 0], np.clip(image, 0, 1), "input")
        else:
            axes[row, 0].axis("off")     # the input is drawn once; only the label here
        axes[row, 0].text(-0.1, 0.5, f"conv {row + 1} ({layer_name})\n"
                          f"{activation.shape[0]}x{activation.shape[1]}",
                          transform=axes[row, 0].transAxes, ha="right", va="center",
                          fontsize=7)
        for col in range(max_maps):
            ax = axes[row, col + 1]
            if col < activation.shape[-1]:
                _show(ax, activation[:, :, col], cmap="viridis")
            else:
                ax.axis("off")
    fig.suptitle(f"feature maps of each conv layer of {name or model.name} (first channels)",
                 fontsize=9)
    return _finish(fig, path)


# -- training curves ----------------------------------------------------------------------
def _history_dict(history):
    """``{"loss": [...], "val_loss": [...], ...}`` from a History, a dict or a saved file."""
    from .callbacks import History

    if isinstance(history, (str, os.PathLike)):
        if not os.path.isfile(history):
            raise FileNotFoundError(f"no history file at {os.fspath(history)!r}")
        history = History.load(history)
    if isinstance(history, History):
        return history.history
    if isinstance(history, dict):
        return history
    raise TypeError(f"expected a History, a dict of lists or a history file path, got "
                    f"{type(history).__name__}")


def accuracy_limits(values):
    """y-axis limits for accuracies: from 0.5 (a coin toss between two classes) or
    lower, to 1. A fixed, wide range keeps epoch-to-epoch noise of a few thousandths
    from looking like a trend, as autoscaling to the data would."""
    low = min([0.5, *(float(v) for v in values if np.isfinite(v))])
    return max(0.0, math.floor(low * 10) / 10), 1.01


def plot_histories(histories, metrics=("accuracy", "loss"), path=None, dpi=DEFAULT_DPI,
                   title=None):
    """Training (dashed) and validation (solid) curves of several runs, one panel
    per metric, in the order of ``metrics``. ``histories`` is ``{label: History |
    dict | path}``; ``title`` (the run and its data) heads the figure. Epochs are
    whole numbers on the x axis; accuracy axes span at least [0.5, 1].
    Figure of 5*len(metrics) x 4 inches."""
    from matplotlib.ticker import MaxNLocator

    histories = {label: _history_dict(h) for label, h in histories.items()}
    fig = _figure((5 * len(metrics), 4), dpi)
    axes = np.atleast_1d(fig.subplots(1, len(metrics)))
    from matplotlib import colormaps

    colours = colormaps["tab10"]
    for ax, metric in zip(axes, metrics):
        plotted, longest = [], 1
        for i, (label, logs) in enumerate(histories.items()):
            for j, (key, style, suffix) in enumerate(((metric, "--", "training"),
                                                      (f"val_{metric}", "-", "validation"))):
                if key in logs:
                    epochs = range(1, len(logs[key]) + 1)
                    # One run: a colour per split; several: a colour per run.
                    colour = colours(i % 10) if len(histories) > 1 else colours(j)
                    ax.plot(epochs, logs[key], style, color=colour,
                            label=f"{label} {suffix}" if len(histories) > 1 else suffix)
                    plotted += list(logs[key])
                    longest = max(longest, len(logs[key]))
        ax.set_xlabel("epoch")
        # Whole epochs only, no epoch 1.5: min_n_ticks=1 because with fewer than two
        # whole numbers in view the locator would fall back to fractional ticks.
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.set_xlim(0.5, longest + 0.5)
        if "acc" in metric:
            ax.set_ylim(*accuracy_limits(plotted))
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return _finish(fig, path)


def plot_history(history, metrics=("accuracy", "loss"), path=None, dpi=DEFAULT_DPI,
                 title=None):
    """Training and validation curves of one run (a History or a saved .json/.csv)."""
    return plot_histories({"": history}, metrics, path, dpi, title)


# -- data and predictions ----------------------------------------------------------------
def plot_image_grid(images, titles=None, path=None, ncols=5, title=None, dpi=DEFAULT_DPI):
    """Images (N, H, W), (N, H, W, 1) or (N, H, W, 3) in a grid, each with an
    optional title. Figure of 1.6*ncols x (1.7*rows + 0.4) inches."""
    images = np.asarray(images)
    if images.ndim not in (3, 4) or len(images) == 0:
        raise ValueError(f"expected a non-empty batch (N, H, W[, C]), got shape {images.shape}")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"got {len(images)} images but {len(titles)} titles")
    rows, ncols = _grid_shape(len(images), ncols)
    fig = _figure((1.6 * ncols, 1.7 * rows + 0.4), dpi)
    axes = np.atleast_1d(fig.subplots(rows, ncols)).ravel()
    for i, ax in enumerate(axes):
        if i < len(images):
            _show(ax, images[i], None if titles is None else titles[i])
        else:
            ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    return _finish(fig, path)


def plot_confusion_matrix(matrix, class_names, path=None, normalize=False, dpi=DEFAULT_DPI):
    """A (K, K) confusion matrix (rows: true class, columns: predicted) as a heat
    map with the counts written in. Figure of 8 x 7 inches."""
    matrix = np.asarray(matrix)
    k = len(class_names)
    if matrix.shape != (k, k):
        raise ValueError(f"a confusion matrix for {k} classes must be {k}x{k}, got "
                         f"{matrix.shape}")
    shown = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1) if normalize else matrix
    fig = _figure((8, 7), dpi)
    ax = fig.subplots()
    image = ax.imshow(shown, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046)
    threshold = shown.max() / 2 if shown.size else 0
    for (i, j), value in np.ndenumerate(shown):
        ax.text(j, i, f"{value:.2f}" if normalize else f"{int(value)}", ha="center",
                va="center", fontsize=7, color="white" if value > threshold else "black")
    ax.set_xticks(range(k))
    ax.set_xticklabels(class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k))
    ax.set_yticklabels(class_names, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    fig.subplots_adjust(left=0.2, bottom=0.2)
    return _finish(fig, path)


__all__ = [
    "BOX_BLUR_3", "BOX_BLUR_8", "SOBEL_HORIZONTAL", "SOBEL_VERTICAL", "accuracy_limits",
    "apply_filters",
    "convolution_demo", "convolution_outputs", "feature_maps", "load_grayscale",
    "plot_confusion_matrix", "plot_feature_maps", "plot_filters", "plot_histories",
    "plot_history", "plot_im2col", "plot_image_grid", "save_figure",
]
