"""``python -m gradcheck`` runs the command line."""

import sys

from gradcheck.faces.cli import main

sys.exit(main())
