"""``python -m evaluation`` runs the command line."""

import sys

from evaluation.cli import main

sys.exit(main())
