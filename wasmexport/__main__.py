"""``python -m wasmexport``: the same as the ``wasmexport`` command."""

import sys

from .cli import main

sys.exit(main())
