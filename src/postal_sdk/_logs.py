"""`POSTAL_LOG=debug|info`: the SDK's log on stderr without any logging set-up.

As `OPENAI_LOG` does for openai-python. The package imports this module only when the
variable is set.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["configure_logging"]

_LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO}


def configure_logging(setting: str) -> None:
    """Act on `POSTAL_LOG`: `debug` or `info` sends the SDK's log, at that level, to stderr.

    Other values do nothing. Called once, when the package is imported with it set.
    """
    level = _LOG_LEVELS.get(setting.strip().lower())
    if level is None:
        return
    logger = logging.getLogger("postal_sdk")
    logger.setLevel(level)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("[%(asctime)s - %(name)s:%(lineno)d - %(levelname)s] %(message)s")
    )
    logger.addHandler(handler)
