import sys

from badminima.cli import main

sys.exit(main())
