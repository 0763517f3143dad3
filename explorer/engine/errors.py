"""How an error reads to the user, in one place: errors that describe the user's situation, not a bug, shown as
their own sentence and logged without a traceback; anything else as its type and text.

The models library has its own (a bad checkpoint, missing data, an absent device); the classes here are the
engine's: asking a model for something it cannot do, or for a model there is not. No torch at import: the UI's
error hook formats with this module too.
"""
from __future__ import annotations


class UserError(Exception):
    """Something the user can fix or choose differently; str(err) is one sentence fit for the banner."""


class NoModelError(UserError):
    """A job that needs a model names none, or names one that is not there."""


class MissingCapabilityError(UserError):
    """The model cannot do what the job asks (no encoder to place the test set, no Gaussian to sample)."""


def user_errors() -> tuple[type, ...]:
    """Errors that describe the user's situation (a bad file, no data, no model): shown verbatim, no traceback."""
    from models.checkpoint import CheckpointError
    from models.core import ConfigError
    from models.data import DataMissingError
    from models.device import DeviceError

    return CheckpointError, ConfigError, DataMissingError, DeviceError, UserError


def one_line(err: BaseException) -> str:
    """The message a user sees: a checkpoint's or data set's own sentence verbatim, else the type and text."""
    text = " ".join(str(err).split())
    if isinstance(err, user_errors()) and text:
        return text
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def one_sentence(err: BaseException) -> str:
    """'Something went wrong: ValueError: text' on one line: what the banner shows for an error nobody expected."""
    text = " ".join(str(err).split())
    name = type(err).__name__
    return f"Something went wrong: {name}: {text}" if text else f"Something went wrong: {name}"
