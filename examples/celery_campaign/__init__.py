"""A Celery app that sends a campaign from many workers: one journal and one pace in Redis."""
