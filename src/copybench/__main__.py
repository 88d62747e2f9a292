import sys

from copybench.cli import main

sys.exit(main())
