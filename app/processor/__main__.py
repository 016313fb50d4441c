import sys

from app.processor.main import main

sys.exit(main())
