"""The training view: Train → New model…, a run watched as it learns (view.py), its dialog (dialog.py), its plots."""
from .view import TrainingView  # noqa: F401  (registers the "train" view)
