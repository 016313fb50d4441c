import sys

from app.producer.main import main

sys.exit(main())
