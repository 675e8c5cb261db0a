import sys

from ser.bench import main

sys.exit(main())
