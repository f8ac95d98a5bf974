"""``python -m convcheck.cli``: the ``convcheck`` command."""

import sys

from convcheck.cli import main

sys.exit(main())
