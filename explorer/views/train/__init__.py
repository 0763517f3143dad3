"""The Train tab: Train → New model…, a run watched as it learns (view.py), its dialog (dialog.py), its plots."""
