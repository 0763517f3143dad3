"""The Directions tab: sliders that move a picture along directions in latent space (view.py), one slider and its
label line (slot.py), and the picks and session state that are not widgets (picks.py)."""
