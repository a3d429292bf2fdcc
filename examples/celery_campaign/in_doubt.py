"""List the campaign's keys in doubt, or settle one once you know what became of it.

    python -m examples.celery_campaign.in_doubt                    # list them
    python -m examples.celery_campaign.in_doubt --sent KEY         # it reached Postal
    python -m examples.celery_campaign.in_doubt --not-sent KEY     # it did not: resend it

A key is in doubt when the worker sending it died (or lost its connection) before Postal's
answer was recorded. Look the message up in Postal's web UI (by recipient and subject),
then settle the key. `--not-sent` frees it: enqueue its line
again (or the whole file: sent lines are not resent) and it goes out.
"""

from __future__ import annotations

import argparse
import sys

from examples.celery_campaign.settings import CAMPAIGN, REDIS_URL
from postal_sdk.redis import RedisJournal


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    settle = parser.add_mutually_exclusive_group()
    settle.add_argument("--sent", metavar="KEY", help="the key's message reached Postal")
    settle.add_argument("--not-sent", metavar="KEY", help="it did not: free the key")
    arguments = parser.parse_args(argv)
    journal = RedisJournal(REDIS_URL, namespace=CAMPAIGN)
    if arguments.sent is not None:
        journal.resolve(arguments.sent, sent=True)
    elif arguments.not_sent is not None:
        journal.resolve(arguments.not_sent, sent=False)
    else:
        for entry in journal.in_doubt():
            print(f"{entry.key}\tclaimed {entry.claimed_at:%Y-%m-%d %H:%M:%S} UTC")
    return 0


if __name__ == "__main__":
    sys.exit(main())
