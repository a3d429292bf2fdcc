"""The Celery app: one task sends one message by its key, paced and journaled in Redis.

    export REDIS_URL=redis://redis.internal:6379/0
    export POSTAL_BASE_URL=https://postal.example.com POSTAL_API_KEY=...
    celery -A examples.celery_campaign.app worker --concurrency 8

Every worker, on every machine, shares through Redis:

- the broker (Celery's queue of tasks);
- the journal (`RedisJournal`, one namespace per campaign): a key is sent once, whichever
  worker runs its task and however often the task runs;
- the pace (`RedisRateLimit`): all workers together send at `POSTAL_RATE`, not each of them.

Settings: see `settings.py`.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery

from examples.celery_campaign.settings import (
    CAMPAIGN,
    JOURNAL_LEASE,
    RATE,
    REDIS_URL,
    SEND_ONE,
    VISIBILITY_TIMEOUT,
)
from postal_sdk import Message, Postal, RawMessage, SendInDoubt
from postal_sdk.redis import RedisJournal, RedisRateLimit

logger = logging.getLogger(__name__)

app = Celery("celery_campaign", broker=REDIS_URL)
app.conf.update(
    # A task is acknowledged once it ran, not when a worker took it: a worker that dies
    # mid-task leaves it in the queue for another. The journal makes that redelivery safe.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    # One task at a time per process: a worker that dies strands few tasks, and the others
    # are not held back while a task waits for its slot of the pace.
    worker_prefetch_multiplier=1,
    # Must be longer than any task takes, waits for the pace included, or a task still
    # running is handed to a second worker too (the journal would still send it once).
    broker_transport_options={
        "visibility_timeout": VISIBILITY_TIMEOUT,
        # How often the workers look for tasks a dead worker took and give them back to the
        # queue (kombu >= 5.6; by default only every ~100 s).
        "unacked_restore_interval": min(10, max(1, VISIBILITY_TIMEOUT // 5)),
        "unacked_restore_throttle": 1,
    },
    task_ignore_result=True,
    task_serializer="json",
    accept_content=["json"],
)

# Made at import, so once in the worker's main process, before the prefork pool forks its
# children: each child opens its own connections (to Postal and to Redis) on first use.
journal = RedisJournal(REDIS_URL, namespace=CAMPAIGN, lease=JOURNAL_LEASE)
pace = RedisRateLimit(REDIS_URL, RATE.count, per=RATE.period, name="postal")
postal = Postal(journal=journal, rate_limit=pace)  # POSTAL_BASE_URL and POSTAL_API_KEY


@app.task(name=SEND_ONE)
def send_one(key: str, message: dict[str, Any]) -> dict[str, Any]:
    """Send `message` (Postal's API shape, as `Message.to_dict()` writes it) once for `key`.

    Sent by this task, or answered from the journal when another run sent it already
    (`replayed`). A key in doubt (a worker died while sending it) is not sent: it is
    logged and left for `python -m examples.celery_campaign.in_doubt` to settle.
    """
    try:
        if "mail_from" in message:
            result = postal.send_raw(RawMessage.from_dict(message), idempotency_key=key)
        else:
            result = postal.send_message(Message.from_dict(message), idempotency_key=key)
    except SendInDoubt as doubt:
        logger.warning("%s", doubt)
        return {"key": key, "status": "in_doubt"}
    status = "replayed" if result.replayed else "sent"
    return {"key": key, "status": status, "message_id": result.message_id}
