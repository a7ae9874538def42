"""Random image augmentation with Keras's ``ImageDataGenerator`` semantics.

    datagen = ImageDataGenerator(rescale=1 / 255, shear_range=0.2, zoom_range=0.2,
                                 horizontal_flip=True)
    train = datagen.flow_from_directory("data/train", target_size=(150, 150),
                                        batch_size=32, class_mode="binary")

For each image, in this order (Keras's ``_get_batches_of_transformed_samples``):

1. draw random parameters (``get_random_transform``): rotation angle, shifts,
   shear angle (degrees), zoom factors zx and zy, flips;
2. ``apply_transform``: one affine resampling, then the flips;
3. ``standardize``: ``preprocessing_function`` first, then ``rescale``.

The geometry is Keras's matrix, composed exactly as in
``keras/src/legacy/preprocessing/image.py``::

    M = rotation @ shift @ shear @ zoom            # 3x3, maps OUTPUT coords to INPUT coords
    M = centre @ M @ centre^-1                     # about o = (h/2 - 0.5, w/2 - 0.5)

so ``zoom > 1`` samples a larger area, i.e. zooms OUT. Keras's matrix works in
(u, v) = (column, row) coordinates, and we keep two quirks of its code so that
results match it: ``tx``, drawn from ``height_shift_range`` and scaled by the
height, moves the image along the columns (``ty`` from ``width_shift_range``
along the rows), and the centre offset pairs h with the column axis (which only
matters for non-square images). The tutorial's shear/zoom/flip is unaffected.

Keras resamples float images with ``scipy.ndimage.affine_transform(order=1)``.
Ours, for uint8 and float32 images, is a small numba kernel (:func:`_affine_bilinear_kernel`)
computing the same bilinear formula at the same positions with scipy's edge modes
("nearest", "reflect", "wrap" = scipy's "grid-wrap", "constant"), compiled with
``nogil`` so the iterator's threads run it in parallel; uint8 results are rounded
to the nearest integer (Keras keeps floats), so they are within one level of
Keras's. It is also faster than Pillow's bilinear ``Image.transform`` (0.35 vs
0.54 ms of CPU for a 150 x 150 RGB image on our 2-core box), which is the
fallback (numba missing, ``MINICNN_DISABLE_NUMBA=1``, other dtypes,
``interpolation_order`` 0 or 3):
Pillow fills outside the image with one colour, so we pad the image first
(``np.pad`` by edge replication = scipy's "nearest"); there "constant" blends
with ``cval`` over the one-pixel ring outside the image (scipy's
"grid-constant") and order 3 is Pillow's bicubic, not scipy's cubic spline.
"""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np
from PIL import Image

from ..engine import cpu_kernels, jit
from ..random import new_generator

FILL_MODES = {"nearest": "edge", "reflect": "symmetric", "wrap": "wrap", "constant": "constant"}
MODE_CODES = {"nearest": 0, "reflect": 1, "wrap": 2, "constant": 3}
RESAMPLE_BY_ORDER = {0: Image.Resampling.NEAREST, 1: Image.Resampling.BILINEAR,
                     3: Image.Resampling.BICUBIC}


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _zoom_pair(value):
    """``zoom_range`` -> (lower, upper) zoom factors: z -> (1 - z, 1 + z); a pair is kept."""
    if _is_number(value) and 0 <= value < 1:
        return 1.0 - float(value), 1.0 + float(value)
    if (not _is_number(value) and not isinstance(value, (str, bytes))
            and np.ndim(value) == 1 and len(value) == 2 and all(map(_is_number, value))
            and 0 < value[0] <= value[1]):
        return float(value[0]), float(value[1])
    raise ValueError(f"zoom_range must be a float z in [0, 1) (factors drawn in [1 - z, 1 + z]) "
                     f"or a pair [lower, upper] of factors, 0 < lower <= upper, got {value!r}")


def _check_shift(value, name):
    """Keras's shift forms: a float or int >= 0, or a non-empty 1-D list of numbers."""
    if _is_number(value):
        if value >= 0:
            return
    elif (not isinstance(value, (str, bytes)) and np.ndim(value) == 1 and len(value) > 0
          and all(map(_is_number, value))):
        return
    raise ValueError(f"{name} must be a float >= 0 (a fraction of the size if < 1, else "
                     f"pixels), an int >= 0 (whole pixels) or a non-empty 1-D list of "
                     f"shifts to choose from, got {value!r}")


# Constructor defaults, for repr and get_config (zoom_range as its pair of factors).
DEFAULTS = {"rotation_range": 0, "width_shift_range": 0.0, "height_shift_range": 0.0,
            "shear_range": 0.0, "zoom_range": (1.0, 1.0), "fill_mode": "nearest", "cval": 0.0,
            "horizontal_flip": False, "vertical_flip": False, "rescale": None,
            "preprocessing_function": None, "interpolation_order": 1, "seed": None}


def _is_default(value, default):
    """``value == default``, but True is not 1 and an array is never a default."""
    if isinstance(value, bool) or isinstance(default, bool) or value is None or default is None:
        return value is default
    try:
        return bool(value == default)
    except ValueError:                             # an array: truth value ambiguous
        return False


def transform_matrix(params, height, width):
    """The 3x3 matrix of Keras's ``apply_affine_transform`` for ``params``.

    It maps an OUTPUT pixel (u, v) = (column, row), integer pixel centres, to the
    INPUT position sampled there. ``None`` when the transform is the identity.
    """
    matrix = np.eye(3)
    identity = True
    theta = params.get("theta", 0)
    if theta:
        t = np.deg2rad(theta)
        matrix = matrix @ np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0],
                                    [0, 0, 1]])
        identity = False
    tx, ty = params.get("tx", 0), params.get("ty", 0)
    if tx or ty:
        matrix = matrix @ np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]])
        identity = False
    shear = params.get("shear", 0)
    if shear:
        s = np.deg2rad(shear)
        matrix = matrix @ np.array([[1, -np.sin(s), 0], [0, np.cos(s), 0], [0, 0, 1]])
        identity = False
    zx, zy = params.get("zx", 1), params.get("zy", 1)
    if zx != 1 or zy != 1:
        matrix = matrix @ np.array([[zx, 0, 0], [0, zy, 0], [0, 0, 1]])
        identity = False
    if identity:
        return None
    # About the centre, with Keras's pairing: o_u from the height, o_v from the width.
    o_u, o_v = height / 2 - 0.5, width / 2 - 0.5
    offset = np.array([[1, 0, o_u], [0, 1, o_v], [0, 0, 1]])
    reset = np.array([[1, 0, -o_u], [0, 1, -o_v], [0, 0, 1]])
    return offset @ matrix @ reset


@jit
def _source_index(i, n, mode):
    """Index ``i`` of a row/column of length ``n`` extended by ``mode`` (scipy's names)."""
    if mode == 1:                       # reflect: d c b a | a b c d | d c b a
        i = i % (2 * n)
        return 2 * n - 1 - i if i >= n else i
    if mode == 2:                       # wrap: a b c d | a b c d | a b c d
        return i % n
    return min(max(i, 0), n - 1)        # nearest (and constant's in-range neighbours)


@jit
def _affine_bilinear_kernel(image, matrix, mode, cval, to_integer, out):
    """out[r, c, :] = image bilinearly sampled at (u, v) = matrix @ (c, r, 1), u = column.

    mode 3 (constant): samples outside [0, W-1] x [0, H-1] are ``cval``, as scipy's
    "constant" (no blending across the border). ``to_integer`` rounds for uint8 out.
    """
    height, width, channels = image.shape
    rounding = 0.5 if to_integer else 0.0
    m00, m01, m02 = matrix[0, 0], matrix[0, 1], matrix[0, 2]
    m10, m11, m12 = matrix[1, 0], matrix[1, 1], matrix[1, 2]
    for r in range(out.shape[0]):
        for c in range(out.shape[1]):
            u = m00 * c + m01 * r + m02
            v = m10 * c + m11 * r + m12
            if mode == 3 and (u < 0.0 or u > width - 1 or v < 0.0 or v > height - 1):
                for ch in range(channels):
                    out[r, c, ch] = cval + rounding
                continue
            u_floor, v_floor = math.floor(u), math.floor(v)
            fu, fv = u - u_floor, v - v_floor
            iu, iv = int(u_floor), int(v_floor)
            if 0 <= iu and iu + 1 < width and 0 <= iv and iv + 1 < height:
                x0, x1, y0, y1 = iu, iu + 1, iv, iv + 1          # inside: no edge rule needed
            else:
                x0, x1 = _source_index(iu, width, mode), _source_index(iu + 1, width, mode)
                y0, y1 = _source_index(iv, height, mode), _source_index(iv + 1, height, mode)
            w00, w01 = (1.0 - fu) * (1.0 - fv), fu * (1.0 - fv)
            w10, w11 = (1.0 - fu) * fv, fu * fv
            for ch in range(channels):
                out[r, c, ch] = (image[y0, x0, ch] * w00 + image[y0, x1, ch] * w01
                                 + image[y1, x0, ch] * w10 + image[y1, x1, ch] * w11
                                 + rounding)


_numba_state = {"usable": None}          # None: not tried yet


def _numba_affine(image, matrix, fill_mode, cval):
    """The compiled bilinear kernel, or None when numba is off or fails to compile."""
    if not cpu_kernels.enabled or _numba_state["usable"] is False:
        return None
    out = np.empty_like(image)
    integer = image.dtype == np.uint8
    try:
        _affine_bilinear_kernel(np.ascontiguousarray(image), np.ascontiguousarray(matrix[:2]),
                                MODE_CODES[fill_mode],
                                float(np.clip(cval, 0, 255)) if integer else float(cval),
                                integer, out)
    except Exception as error:  # a numba that cannot compile here: use Pillow from now on
        _numba_state["usable"] = False
        warnings.warn(f"numba affine kernel unavailable ({error}); using Pillow", RuntimeWarning)
        return None
    _numba_state["usable"] = True
    return out


def affine_resample(image, matrix, fill_mode="nearest", cval=0.0, order=1):
    """Resample ``image`` (H, W, C) through ``matrix`` (output (u, v) -> input (u, v)).

    Bilinear (order 1) on uint8 or float32 runs the numba kernel above: the exact
    formula of scipy's order-1 ``affine_transform``. Otherwise (order 0 or 3, other
    dtypes, no numba) Pillow resamples a padded copy. Same shape and dtype as ``image``.
    """
    if fill_mode not in FILL_MODES:
        raise ValueError(f"fill_mode must be one of {sorted(FILL_MODES)}, got {fill_mode!r}")
    if order not in RESAMPLE_BY_ORDER:
        raise ValueError(f"interpolation_order must be 0, 1 or 3, got {order!r}")
    if order == 1 and image.dtype in (np.uint8, np.float32):
        out = _numba_affine(image, matrix, fill_mode, cval)
        if out is not None:
            return out
    return pillow_affine_resample(image, matrix, fill_mode, cval, order)


def pillow_affine_resample(image, matrix, fill_mode="nearest", cval=0.0, order=1):
    """:func:`affine_resample` by Pillow's ``Image.transform``, on a padded copy."""
    height, width = image.shape[:2]
    linear, shift = matrix[:2, :2], matrix[:2, 2]
    # Where the four output corners sample the input: pad that far (+2 for the filter).
    corners = np.array([[0, 0], [width - 1, 0], [0, height - 1], [width - 1, height - 1]])
    sampled = corners @ linear.T + shift                       # (4, 2) as (u, v)
    lo = np.maximum(0, np.ceil(-sampled.min(axis=0))).astype(int) + 2
    hi = np.maximum(0, np.ceil(sampled.max(axis=0) - [width - 1, height - 1])).astype(int) + 2
    pad = ((lo[1], hi[1]), (lo[0], hi[0]), (0, 0))            # rows, columns, channels
    if fill_mode == "constant":
        padded = np.pad(image, pad, mode="constant", constant_values=cval)
    else:
        padded = np.pad(image, pad, mode=FILL_MODES[fill_mode])
    # Pillow samples pixel i at its centre i + 0.5 and maps output centres; move
    # Keras's integer-centred map there and into the padded frame.
    pil_shift = shift + lo + 0.5 - linear @ [0.5, 0.5]
    data = (linear[0, 0], linear[0, 1], pil_shift[0], linear[1, 0], linear[1, 1], pil_shift[1])
    resample = RESAMPLE_BY_ORDER[order]
    size = (width, height)
    if image.dtype == np.uint8 and image.shape[2] in (1, 3):
        source = Image.fromarray(padded[..., 0] if image.shape[2] == 1 else padded)
        out = np.asarray(source.transform(size, Image.Transform.AFFINE, data, resample))
        return out.reshape(image.shape)
    channels = [np.asarray(Image.fromarray(np.ascontiguousarray(padded[..., c], np.float32))
                           .transform(size, Image.Transform.AFFINE, data, resample))
                for c in range(image.shape[2])]
    return np.stack(channels, axis=-1).astype(image.dtype, copy=False)


class ImageDataGenerator:
    """Keras's ``ImageDataGenerator``: random transforms, rescaling, and iterators.

    Ranges follow Keras: ``rotation_range`` and ``shear_range`` in degrees (drawn
    uniformly in [-r, r]); shifts as a fraction of the size when < 1, else pixels;
    ``zoom_range`` z draws zx and zy independently in [1 - z, 1 + z] (or give a
    pair); flips with probability 0.5. ``seed`` is the default seed of the iterators
    it makes and of ``random_transform`` calls without one.
    """

    def __init__(self, rotation_range=0, width_shift_range=0.0, height_shift_range=0.0,
                 shear_range=0.0, zoom_range=0.0, fill_mode="nearest", cval=0.0,
                 horizontal_flip=False, vertical_flip=False, rescale=None,
                 preprocessing_function=None, interpolation_order=1, seed=None):
        if fill_mode not in FILL_MODES:
            raise ValueError(f"fill_mode must be one of {sorted(FILL_MODES)}, "
                             f"got {fill_mode!r}")
        if interpolation_order not in RESAMPLE_BY_ORDER:
            raise ValueError(f"interpolation_order must be 0, 1 or 3, "
                             f"got {interpolation_order!r}")
        if preprocessing_function is not None and not callable(preprocessing_function):
            raise TypeError("preprocessing_function must be callable, "
                            f"got {type(preprocessing_function).__name__}")
        for name, value in (("rotation_range", rotation_range), ("shear_range", shear_range)):
            if not _is_number(value) or value < 0:
                raise ValueError(f"{name} must be a number >= 0 (degrees, drawn in [-r, r]), "
                                 f"got {value!r}")
        _check_shift(width_shift_range, "width_shift_range")
        _check_shift(height_shift_range, "height_shift_range")
        if rescale is not None and not _is_number(rescale):
            raise ValueError(f"rescale must be a number (e.g. 1/255) or None, got {rescale!r}")
        if not _is_number(cval):
            raise ValueError(f"cval must be a number (the fill value), got {cval!r}")
        self.rotation_range = rotation_range
        self.width_shift_range = width_shift_range
        self.height_shift_range = height_shift_range
        self.shear_range = shear_range
        self.zoom_range = _zoom_pair(zoom_range)
        self.fill_mode = fill_mode
        self.cval = cval
        self.horizontal_flip = bool(horizontal_flip)
        self.vertical_flip = bool(vertical_flip)
        self.rescale = rescale
        self.preprocessing_function = preprocessing_function
        self.interpolation_order = interpolation_order
        self.seed = seed
        self._rng = None              # made on first use, from minicnn's seed when seed is None

    def get_config(self):
        """The settings that differ from the defaults, by argument name (zoom_range as
        its pair of factors), in the constructor's order."""
        return {name: getattr(self, name) for name, default in DEFAULTS.items()
                if not _is_default(getattr(self, name), default)}

    def __repr__(self):
        settings = ", ".join(f"{name}={value!r}" for name, value in self.get_config().items())
        return f"ImageDataGenerator({settings})"

    @property
    def augments(self):
        """True when ``random_transform`` can change an image."""
        return bool(self.rotation_range or self.width_shift_range or self.height_shift_range
                    or self.shear_range or self.zoom_range != (1.0, 1.0)
                    or self.horizontal_flip or self.vertical_flip)

    # -- random parameters ------------------------------------------------------
    @staticmethod
    def _shift(rng, shift_range, size):
        """One shift in pixels, drawn as Keras does (float: uniform; int/list: choice * sign)."""
        if not shift_range:
            return 0.0
        if isinstance(shift_range, float):
            shift = rng.uniform(-shift_range, shift_range)
        else:
            choices = np.arange(shift_range) if np.isscalar(shift_range) else shift_range
            shift = float(rng.choice(choices)) * rng.choice([-1, 1])
        if np.max(shift_range) < 1:
            shift *= size
        return float(shift)

    def get_random_transform(self, img_shape, seed=None):
        """Random parameters for one image of shape (H, W, C), as a Keras-style dict.

        ``seed``: an int, a ``numpy.random.Generator``, or None (the generator's own
        stream). Values are drawn in Keras's order: theta, tx, ty, shear, zoom, flips.
        """
        if seed is None and self._rng is None:
            self._rng = new_generator(self.seed)
        rng = seed if isinstance(seed, np.random.Generator) else (
            self._rng if seed is None else np.random.default_rng(seed))
        height, width = img_shape[0], img_shape[1]
        theta = rng.uniform(-self.rotation_range, self.rotation_range) \
            if self.rotation_range else 0.0
        tx = self._shift(rng, self.height_shift_range, height)
        ty = self._shift(rng, self.width_shift_range, width)
        shear = rng.uniform(-self.shear_range, self.shear_range) if self.shear_range else 0.0
        if self.zoom_range == (1.0, 1.0):
            zx = zy = 1.0
        else:
            zx, zy = rng.uniform(self.zoom_range[0], self.zoom_range[1], 2)
        flip_horizontal = bool(rng.random() < 0.5) and self.horizontal_flip
        flip_vertical = bool(rng.random() < 0.5) and self.vertical_flip
        return {"theta": float(theta), "tx": tx, "ty": ty, "shear": float(shear),
                "zx": float(zx), "zy": float(zy), "flip_horizontal": flip_horizontal,
                "flip_vertical": flip_vertical}

    # -- applying them ------------------------------------------------------------
    def apply_transform(self, x, transform_parameters):
        """``x`` (H, W, C) resampled by the affine part of the parameters, then flipped.

        Same shape and dtype as ``x`` (uint8 stays uint8: the fast path).
        """
        x = np.asarray(x)
        if x.ndim != 3:
            raise ValueError(f"apply_transform expects one image (H, W, C), got shape {x.shape}")
        matrix = transform_matrix(transform_parameters, x.shape[0], x.shape[1])
        if matrix is not None:
            x = affine_resample(x, matrix, self.fill_mode, self.cval, self.interpolation_order)
        if transform_parameters.get("flip_horizontal", False):
            x = x[:, ::-1]                       # a view; copied once into the batch
        if transform_parameters.get("flip_vertical", False):
            x = x[::-1]
        return x

    def random_transform(self, x, seed=None):
        """``apply_transform(x, get_random_transform(x.shape, seed))``."""
        return self.apply_transform(x, self.get_random_transform(np.shape(x), seed))

    def standardize(self, x):
        """``preprocessing_function`` first, then ``rescale`` (Keras's order).

        Works on one image or a batch; float input is modified in place, as Keras does.
        """
        if self.preprocessing_function is not None:
            x = self.preprocessing_function(x)
        if self.rescale:
            x *= self.rescale
        return x

    # -- iterators ------------------------------------------------------------------
    def flow_from_directory(self, directory, target_size=(256, 256), color_mode="rgb",
                            classes=None, class_mode="categorical", batch_size=32,
                            shuffle=True, seed=None, interpolation="nearest", workers=None,
                            prefetch=4, follow_links=False):
        """A :class:`~minicnn.data.iterator.DirectoryIterator` over ``directory``'s
        class sub-folders, augmenting with this generator."""
        from .iterator import DirectoryIterator
        return DirectoryIterator(directory, self, target_size=target_size,
                                 color_mode=color_mode, classes=classes,
                                 class_mode=class_mode, batch_size=batch_size, shuffle=shuffle,
                                 seed=self.seed if seed is None else seed,
                                 interpolation=interpolation, workers=workers,
                                 prefetch=prefetch, follow_links=follow_links)

    def flow(self, x, y=None, batch_size=32, shuffle=True, seed=None, workers=None,
             prefetch=4):
        """An :class:`~minicnn.data.iterator.ArrayIterator` over in-memory images
        ``x`` (N, H, W, C) and optional labels ``y`` (N, ...)."""
        from .iterator import ArrayIterator
        return ArrayIterator(x, y, self, batch_size=batch_size, shuffle=shuffle,
                             seed=self.seed if seed is None else seed, workers=workers,
                             prefetch=prefetch)
