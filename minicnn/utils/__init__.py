"""Helpers, where Keras keeps them.

- :func:`to_categorical`, :func:`normalize`: ``keras.utils`` (Keras 3), and the
  :mod:`minicnn.utils.np_utils` module for Keras 2's ``from keras.utils import np_utils``.
- :func:`load_img`, :func:`img_to_array`, :func:`array_to_img`, :func:`save_img`: Keras 3's
  ``keras.utils`` names for :mod:`minicnn.preprocessing.image`'s functions (the same objects).
"""
from . import np_utils
from .np_utils import normalize, to_categorical

_IMAGE_FUNCTIONS = ("array_to_img", "img_to_array", "load_img", "save_img")

__all__ = ["np_utils", "normalize", "to_categorical", *_IMAGE_FUNCTIONS]


def __getattr__(name):
    # Imported on first use: minicnn.preprocessing.image imports minicnn.data, whose
    # arrays module imports to_categorical from here, so importing it at the top would
    # be circular (and would load Pillow for every ``import minicnn``).
    if name in _IMAGE_FUNCTIONS:
        from ..preprocessing import image
        return getattr(image, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
