"""Keras 2's names, still answered: the tutorials minicnn follows were written for Keras 2.

Keras 3 removed ``fit_generator``, ``predict_classes``, ``lr=`` and friends, so the
2017-2019 tutorials stop at their first such line. minicnn answers each old name with
what Keras 3 calls it, and says so once per process (a ``UserWarning`` naming the new
name), so a tutorial runs unchanged and its reader learns the current spelling.
"""
from __future__ import annotations

import warnings

import numpy as np

_warned: set[str] = set()


def warn_once(old: str, new: str, stacklevel: int = 3) -> None:
    """Warn, once per process and old name, that ``old`` is Keras 2's name for ``new``."""
    if old not in _warned:
        _warned.add(old)
        warnings.warn(f"{old} is Keras 2's name; Keras 3 (and minicnn) call it {new}",
                      UserWarning, stacklevel=stacklevel)


def _unsupported(who, **settings):
    """Keras 2 arguments that change results and that minicnn does not have."""
    given = {k: v for k, v in settings.items() if v is not None}
    if given:
        raise ValueError(f"{who}: {', '.join(f'{k}={v!r}' for k, v in given.items())} "
                         "is not supported by minicnn")


class Keras2Methods:
    """``Sequential``'s methods under their Keras 2 names (``self`` is the model)."""

    def fit_generator(self, generator, steps_per_epoch=None, epochs=1, verbose=1,
                      callbacks=None, validation_data=None, validation_steps=None,
                      class_weight=None, max_queue_size=10, workers=1,
                      use_multiprocessing=False, shuffle=True, initial_epoch=0):
        """``fit`` over a generator of (x, y) batches (Keras 2). The queue and worker
        settings are accepted and ignored: minicnn's iterators load in their own threads."""
        warn_once("fit_generator", "fit")
        _unsupported("fit_generator", class_weight=class_weight)
        return self.fit(generator, steps_per_epoch=steps_per_epoch, epochs=epochs,
                        verbose=verbose, callbacks=callbacks, validation_data=validation_data,
                        validation_steps=validation_steps, initial_epoch=initial_epoch)

    def evaluate_generator(self, generator, steps=None, max_queue_size=10, workers=1,
                           use_multiprocessing=False, verbose=0):
        """``evaluate`` over a generator of (x, y) batches (Keras 2)."""
        warn_once("evaluate_generator", "evaluate")
        return self.evaluate(generator, steps=steps, verbose=verbose)

    def predict_generator(self, generator, steps=None, max_queue_size=10, workers=1,
                          use_multiprocessing=False, verbose=0):
        """``predict`` over a generator of batches (Keras 2)."""
        warn_once("predict_generator", "predict")
        return self.predict(generator, steps=steps, verbose=verbose)

    def predict_proba(self, x, batch_size=32, verbose=0):
        """The model's outputs, which are probabilities after a softmax or sigmoid (Keras 2)."""
        warn_once("predict_proba", "predict")
        return self.predict(x, batch_size=batch_size, verbose=verbose)

    def predict_classes(self, x, batch_size=32, verbose=0):
        """Class indices (Keras 2): the argmax of a softmax output (N,), or for one sigmoid
        unit 1 where p > 0.5, as int32 of shape (N, 1)."""
        warn_once("predict_classes", "np.argmax(model.predict(x), axis=-1)")
        probabilities = self.predict(x, batch_size=batch_size, verbose=verbose)
        if probabilities.shape[-1] > 1:
            return probabilities.argmax(axis=-1)
        return (probabilities > 0.5).astype(np.int32)
