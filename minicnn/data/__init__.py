"""Image data pipelines and datasets.

- :func:`organize_kaggle_split`: Kaggle's ``train/`` folder -> ``train/`` and
  ``validation/`` class folders (links or copies; the source is never touched).
- :class:`ImageDataGenerator` and :class:`DirectoryIterator` (``flow_from_directory``):
  Keras's augmentation and batches from class folders, decoded by worker threads.
- :func:`load_fashion_mnist`: the IDX files of Fashion-MNIST, as Keras's ``load_data``.
- :func:`train_validation_split`, :func:`to_categorical`: array helpers.
- :func:`list_test_images`, :func:`load_images`, :func:`write_submission`: Kaggle's test set.
- :func:`make_shapes`, :func:`write_shapes_directory`: a synthetic two-class set.
"""
from .arrays import to_categorical, train_validation_split
from .augment import ImageDataGenerator
from .fashion_mnist import CLASS_NAMES as FASHION_MNIST_CLASS_NAMES
from .fashion_mnist import load_fashion_mnist
from .iterator import ArrayIterator, DirectoryIterator, load_image
from .kaggle import list_test_images, load_images, write_submission
from .synthetic import make_shapes, write_shapes_directory

__all__ = [
    "ArrayIterator", "DirectoryIterator", "FASHION_MNIST_CLASS_NAMES", "ImageDataGenerator",
    "list_test_images", "load_fashion_mnist", "load_image", "load_images", "make_shapes",
    "organize_kaggle_split", "to_categorical", "train_validation_split", "write_shapes_directory",
    "write_submission",
]


def __getattr__(name):
    # Imported on first use, so that ``python -m minicnn.data.split`` does not find the
    # module already imported by this package (runpy warns about that).
    if name == "organize_kaggle_split":
        from .split import organize_kaggle_split
        return organize_kaggle_split
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
