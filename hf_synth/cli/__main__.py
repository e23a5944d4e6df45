"""``python -m hf_synth.cli``."""

import sys

from . import main

sys.exit(main())
