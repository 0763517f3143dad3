"""Errors that describe the user's situation, not a bug: shown as their own sentence, logged without a traceback.

The models library has its own (a bad checkpoint, missing data, an absent device); these are the engine's:
asking a model for something it cannot do, or for a model there is not.
"""
from __future__ import annotations


class UserError(Exception):
    """Something the user can fix or choose differently; str(err) is one sentence fit for the banner."""


class NoModelError(UserError):
    """A job that needs a model names none, or names one that is not there."""


class MissingCapabilityError(UserError):
    """The model cannot do what the job asks (no encoder to place the test set, no Gaussian to sample)."""
