"""The error every model-file reader raises, in a module of its own so that the readers of
lstmkit's format (:mod:`saving`) and of Keras's (:mod:`keras_files`, :mod:`keras_config`) share
it without importing one another."""

from __future__ import annotations


class ModelFileError(ValueError):
    """A file that is not a valid model file (or does not fit the model): damaged, of another
    format or version, or refused for safety. A ``ValueError``, so ``except ValueError`` works."""
