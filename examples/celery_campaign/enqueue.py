"""Enqueue a campaign: one `send_one` task per line of a JSONL file.

    python -m examples.celery_campaign.enqueue campaign.jsonl

Each line is a message in Postal's API shape (the shape `postal send-many` reads and
`Message.to_dict()` writes). Its key is the line's `"key"` field if it has one, else its
line number (from 1): enqueueing the same file again sends nothing twice, so a run
stopped half-way is resumed by running this again.
"""

from __future__ import annotations

import argparse
import json
import sys

from celery import Celery

from examples.celery_campaign.settings import REDIS_URL, SEND_ONE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=argparse.FileType("r", encoding="utf-8"))
    arguments = parser.parse_args(argv)
    # Only the broker is needed here, not the workers' code or Postal's credentials.
    app = Celery("celery_campaign", broker=REDIS_URL)
    queued = 0
    with app.producer_or_acquire() as producer, arguments.file as lines:
        for number, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            message = json.loads(text)
            key = str(message.pop("key", number))
            app.send_task(SEND_ONE, args=(key, message), producer=producer)
            queued += 1
    print(f"queued {queued} message(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
