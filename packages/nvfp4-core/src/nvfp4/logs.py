"""The ``nvfp4`` logger; ``NVFP4_LOG_LEVEL`` (DEBUG, INFO, WARNING, ...) sets its level."""

from __future__ import annotations

import logging
import os

LOG_LEVEL_ENV = "NVFP4_LOG_LEVEL"
log = logging.getLogger("nvfp4")


def configure_from_env() -> None:
    level = os.environ.get(LOG_LEVEL_ENV)
    if not level:
        return
    value = logging.getLevelName(level.strip().upper())
    if not isinstance(value, int):
        raise ValueError(f"{LOG_LEVEL_ENV} must be a logging level name (DEBUG, INFO, ...), got {level!r}")
    log.setLevel(value)
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
