import sys

from app.runtime.bench.main import main

sys.exit(main())
