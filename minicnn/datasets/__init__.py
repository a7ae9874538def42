"""Keras's ``keras.datasets`` for the data sets minicnn's tutorials use, read from files
already on the machine (minicnn never downloads):

    from minicnn.datasets import fashion_mnist, mnist
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()

Both return what Keras's ``load_data()`` returns: uint8 images (60000, 28, 28) and
(10000, 28, 28), uint8 labels (60000,) and (10000,). Where the files are looked for,
and the one-line help when they are nowhere: :mod:`minicnn.locate`.
"""
from . import fashion_mnist, mnist

__all__ = ["fashion_mnist", "mnist"]
