"""``python -m pamconform.cli``."""

import sys

from pamconform.cli.main import main

sys.exit(main())
