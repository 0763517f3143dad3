"""The Interpolate tab: a slider between keyframes (view.py), the keyframes and their path (path.py, paths.py), the
picture-file conversion and the plots beside it."""
