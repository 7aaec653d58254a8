"""`python -m embedrank.cli` = the `embedrank` command."""

import sys

from embedrank.cli import main

sys.exit(main())
