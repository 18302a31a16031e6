"""``python -m gradcheck`` runs the command line."""

import sys

from gradcheck.cli import main

sys.exit(main())
