import sys

from streamcrm.cli import main

sys.exit(main())
