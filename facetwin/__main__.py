"""``python -m facetwin``: the ``facetwin`` command line."""

import sys

from .cli import main

sys.exit(main())
