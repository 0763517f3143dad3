"""The one thread that owns the device: it runs every model call, and sends numpy arrays back."""
