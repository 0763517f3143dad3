# The README's contract: `make run` launches the app on the shipped weights, `make test` runs the tests.
# Both create .venv inside the repo, install the project editable and make sure the data is on disk.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
FMNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
QT_LIBS := libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxkbcommon-x11-0 libegl1 libgl1 libfontconfig1 libdbus-1-3
APT    := $(shell command -v apt-get 2>/dev/null)
ROOT   := $(shell [ "$$(id -u)" = 0 ] && echo yes)

.PHONY: run test lint venv data qt-libs benchmarks clean

# An editable install compiles no bytecode, and where PYTHONDONTWRITEBYTECODE is set none is ever cached: compile
# the app's modules (only what changed) so every launch reads bytecode instead of compiling ~60 modules.
run: venv data qt-libs
	@$(BIN)/python -m compileall -q explorer models >/dev/null
	$(BIN)/latent-explorer $(ARGS)

test: venv data qt-libs
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest $(PYTEST_ARGS)

# ruff, configured in pyproject.toml, over the whole repository: what CI checks before the tests.
lint: venv
	$(BIN)/ruff check .

venv: $(STAMP)

# torch and torchvision are pinned to the releases this machine keeps on disk; never newer.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# Debian ships Fashion-MNIST as a package; install it when it is missing and apt-get can.
data:
	@if [ ! -f $(FMNIST) ] && [ -n "$(APT)" ] && [ -n "$(ROOT)" ]; then \
		echo "Installing Debian's dataset-fashion-mnist ..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; \
	fi
	@[ -f $(FMNIST) ] || echo "Fashion-MNIST is not under /usr/share/datasets; the app will download it (or set LATENT_EXPLORER_DATA)."

# Qt's xcb plugin needs these shared libraries to open a real window.
qt-libs:
	@if [ -n "$(APT)" ] && [ -n "$(ROOT)" ] && ! dpkg -s $(QT_LIBS) >/dev/null 2>&1; then \
		echo "Installing the libraries Qt's xcb plugin needs ..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(QT_LIBS) >/dev/null; \
	fi

benchmarks: venv data
	$(BIN)/python benchmarks/train_speed.py
	$(BIN)/python benchmarks/sampling.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
