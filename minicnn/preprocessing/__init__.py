"""Keras's ``keras.preprocessing`` paths: ``from minicnn.preprocessing.image import
ImageDataGenerator, load_img, img_to_array, array_to_img``, as the Keras 2 tutorials
import them (Keras 3 dropped ``ImageDataGenerator`` from there; minicnn keeps it).
"""
from . import image

__all__ = ["image"]
