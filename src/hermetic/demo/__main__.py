"""``python -m hermetic.demo``."""

from hermetic.demo import main

raise SystemExit(main())
