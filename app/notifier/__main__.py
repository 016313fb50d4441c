import sys

from app.notifier.main import main

sys.exit(main())
