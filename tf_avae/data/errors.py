"""Errors raised by :mod:`tf_avae.data`."""

from __future__ import annotations


class DatasetNotAvailableError(FileNotFoundError):
    """A dataset is not on this machine yet.

    ``tf_avae`` never downloads implicitly: the message says which command prepares the data
    (``tf-avae-prepare-data NAME``, which needs network access) or where to put it.
    """


class DataIntegrityError(ValueError):
    """Downloaded or cached data does not match what was expected (hash, format or content).

    Raised before anything is written, so an existing good cache is never replaced by bad data.
    """
