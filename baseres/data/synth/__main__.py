import sys

from baseres.data.synth.cli import main

sys.exit(main())
