"""`python -m explorer`: the same as the `latent-explorer` command."""
import sys

from .app import main

sys.exit(main())
