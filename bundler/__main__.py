"""``python -m bundler`` runs the ``wheelhouse`` command."""

import sys

from bundler.cli import main

sys.exit(main())
