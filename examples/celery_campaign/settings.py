"""The example's settings, from the environment (the workers, `enqueue` and `in_doubt` share them).

`REDIS_URL` (broker, journal and pace), `CAMPAIGN` (the journal's namespace: one per
campaign), `POSTAL_RATE` (`COUNT/PERIOD`, the pace of all workers together), and two that
the tests shorten: `JOURNAL_LEASE` (seconds before a dead worker's claim is in doubt) and
`VISIBILITY_TIMEOUT` (seconds before a task that a dead worker took goes to another).
The workers also read `POSTAL_BASE_URL` and `POSTAL_API_KEY` (through `Postal()` itself).
"""

from __future__ import annotations

import os

from postal_sdk import RateLimit

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
CAMPAIGN = os.environ.get("CAMPAIGN", "newsletter")
RATE = RateLimit.parse(os.environ.get("POSTAL_RATE", "600/hour"))
JOURNAL_LEASE = float(os.environ.get("JOURNAL_LEASE", "30"))
VISIBILITY_TIMEOUT = int(os.environ.get("VISIBILITY_TIMEOUT", "3600"))
SEND_ONE = "campaign.send_one"
"""The task's name, by which `enqueue` sends it without importing the workers' code."""
