"""Errors worth retrying (Celery's autoretry_for on the job tasks): lost or failing database connections, Redis
and broker hiccups."""
from __future__ import annotations

from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import OperationalError

TRANSIENT = (OperationalError, RedisConnectionError, RedisTimeoutError, KombuOperationalError, ConnectionError)
