"""The Compare tab: every family on one screen (view.py), its columns and rows (parts.py), its numbers."""
