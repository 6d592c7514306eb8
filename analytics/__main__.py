"""`python -m analytics` runs the CLI."""

import sys

from analytics.cli import main

sys.exit(main())
