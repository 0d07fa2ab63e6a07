import sys

from maestrod.main import main

sys.exit(main())
