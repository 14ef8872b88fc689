"""``python -m aiolibp2p`` runs the command line."""

import sys

from aiolibp2p.cli.main import main

sys.exit(main())
