import sys

from badminima.book.cli import main

sys.exit(main())
