"""Run the main job: ``python -m balance --help``."""

import sys

from ._cli import main

sys.exit(main())
