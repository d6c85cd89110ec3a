"""The errors qrr raises. The CLI turns each into one line on stderr and its ``exit_code``."""

from __future__ import annotations


class QrrError(Exception):
    """Base class of every error qrr raises on purpose (a runtime failure: exit 1)."""

    exit_code = 1


class InputError(QrrError):
    """Bad input or usage: malformed records, missing fields, impossible options (exit 2)."""

    exit_code = 2


class ModelNotFoundError(QrrError):
    """The model is neither a local folder nor in the local cache."""


class ModelCheckError(ModelNotFoundError):
    """A model folder that is not a complete Qwen3-Reranker: wrong config, tokenizer or partial weights."""


class DeviceError(QrrError):
    """The asked device or dtype does not exist on this machine (exit 2)."""

    exit_code = 2


class OutOfMemoryError(QrrError):
    """A forward pass ran out of memory."""


class Interrupted(QrrError):
    """Ctrl-C, with what was finished and how to go on (exit 130)."""

    exit_code = 130
