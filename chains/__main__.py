import sys

from chains.cli import main

sys.exit(main())
