"""The Map tab: the latent plane (view.py), its layers, the probes, the data scatter, the posterior overlay and
the sidebar."""
