"""`python -m postal_sdk.cli`: the `postal` command."""

from postal_sdk.cli import main

raise SystemExit(main())
