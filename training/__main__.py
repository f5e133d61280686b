"""`python -m training ...` = `guardrail train ...`."""

import sys

from training.cli import main

sys.exit(main())
