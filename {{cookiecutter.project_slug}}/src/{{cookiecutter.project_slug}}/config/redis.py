"""Settings of the Redis module (client, shared cache and limits, job queue and worker)."""

from __future__ import annotations

from pydantic import Field

from .common import SettingsPart


class RedisSettings(SettingsPart):
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_key_prefix: str = "{{ cookiecutter.project_slug }}:"
    redis_timeout_s: float = Field(default=2.0, gt=0)
    redis_max_connections: int = Field(default=50, ge=1)
    # While Redis is unreachable, rate limits admit every request (true) or answer 503 (false).
    rate_limit_fail_open: bool = True
    # Jobs in the worker process: a running job reports every JOB_HEARTBEAT_S / 3 s; one
    # silent for JOB_HEARTBEAT_S (its worker died) runs again, up to JOB_MAX_ATTEMPTS runs.
    job_timeout_s: int = Field(default=300, ge=1)
    job_heartbeat_s: int = Field(default=15, ge=1)
    job_max_attempts: int = Field(default=3, ge=1)
    job_shutdown_grace_s: int = Field(default=20, ge=0)
