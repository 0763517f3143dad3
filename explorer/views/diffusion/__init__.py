"""The Diffusion tab: the forward process at any t, the reverse process frame by frame, branches, the cost."""
