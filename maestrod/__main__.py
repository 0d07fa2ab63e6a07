import sys

from maestrod.launch import main

sys.exit(main())
