"""Ready-made networks, as in ``keras.applications``.

``VGG16`` builds the convolutional base of VGG16 (Simonyan and Zisserman, 2014)
with Keras's layer names, so Keras's ImageNet weight file loads into it;
``preprocess_input`` prepares images the way those weights expect;
``extract_features`` runs a base over a directory of images once and caches the
result (the "bottleneck features" of the cats vs dogs tutorial).
"""
from .features import extract_features
from .vgg16 import VGG16, preprocess_input

__all__ = ["VGG16", "extract_features", "preprocess_input"]
