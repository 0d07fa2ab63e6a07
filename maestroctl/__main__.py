import sys

from maestroctl.main import main

sys.exit(main())
