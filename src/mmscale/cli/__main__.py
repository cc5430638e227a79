import sys

from mmscale.cli import main

sys.exit(main())
