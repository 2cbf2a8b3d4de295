"""``python -m tokenizers_zoo`` is the ``tokenizers-zoo`` command."""

import sys

from .cli import main

sys.exit(main())
