"""Checkpoints: one .safetensors file per model, its JSON metadata under the header key `latent_explorer`.

(Being written: save/load/read_metadata. The error types below are the contract.)
"""
from __future__ import annotations

METADATA_KEY = "latent_explorer"
FORMAT_VERSION = 1


class CheckpointError(Exception):
    """A file that cannot be used as a model; str(err) is one human sentence, fit for a dialog or a CLI line."""

    kind = "invalid"


class NotAFileError(CheckpointError):
    kind = "not-a-file"


class NotSafetensorsError(CheckpointError):
    kind = "not-safetensors"


class TruncatedError(CheckpointError):
    kind = "truncated"


class HeaderMismatchError(CheckpointError):
    """The header's offsets or dtypes/shapes do not add up to the bytes in the file."""
    kind = "header-lies"


class UnknownFamilyError(CheckpointError):
    kind = "unknown-family"


class BadConfigError(CheckpointError):
    kind = "bad-config"


class TensorMismatchError(CheckpointError):
    kind = "tensor-mismatch"


class NewerFormatError(CheckpointError):
    kind = "newer-format"


class NonFiniteError(CheckpointError):
    kind = "non-finite"


class PickleRefusedError(CheckpointError):
    kind = "pickle-refused"
