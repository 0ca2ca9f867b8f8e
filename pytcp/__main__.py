"""Allow ``python -m pytcp``."""

from pytcp.cli import main

raise SystemExit(main())
