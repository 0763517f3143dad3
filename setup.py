"""The one thing pyproject.toml cannot say: ship the top-level `weights/` and `assets/` inside the packages.

A wheel carries the checkout's `weights/*.safetensors` as `models/shipped/` and the app's icon and style sheet as
`explorer/assets/`, so nothing but `models`, `explorer` and the dist-info lands in site-packages; the code finds them
with importlib.resources (models/weights.py, explorer/style.py). The packages are still discovered, so a new
subpackage needs no edit here. Everything else is in pyproject.toml.
"""
from setuptools import find_namespace_packages, setup

MAPPED = {"models.shipped": "weights", "explorer.assets": "assets"}

setup(
    packages=find_namespace_packages(include=["models", "models.*", "explorer", "explorer.*"],
                                     exclude=["*.__pycache__"]) + sorted(MAPPED),
    package_dir=MAPPED,
    package_data={"models.shipped": ["*.safetensors"], "explorer.assets": ["*.svg", "*.qss"]},
    exclude_package_data={"models.shipped": ["*.state.safetensors"]},   # training states are not shipped models
)
