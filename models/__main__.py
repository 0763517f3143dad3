"""`python -m models train|sample|info|import`: the headless command line (see models/cli)."""
import sys

from .cli import main

sys.exit(main())
