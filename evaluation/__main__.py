"""``python -m evaluation`` runs the command line."""

import sys

from evaluation.cli import main

if __name__ == "__main__":
    sys.exit(main())
