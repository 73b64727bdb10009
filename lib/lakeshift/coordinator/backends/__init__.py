"""Backends that run jobs on clusters: spark-submit, EMR, Livy, and an in-process fake."""

from __future__ import annotations

from lakeshift.coordinator.backends.base import Backend, JobStatus, RunContext, Submission

__all__ = ["Backend", "JobStatus", "RunContext", "Submission", "make_backend"]


def make_backend(name: str, profile: object, ctx: RunContext) -> Backend:
    """Build the backend for a cluster profile.

    Raises:
        ConfigError: unknown backend.
    """
    from lakeshift.coordinator.clusters import EmrProfile, LivyProfile, SparkSubmitProfile
    from lakeshift.errors import ConfigError

    if isinstance(profile, SparkSubmitProfile):
        from lakeshift.coordinator.backends.spark_submit import SparkSubmitBackend

        return SparkSubmitBackend(name, profile, ctx)
    if isinstance(profile, EmrProfile):
        from lakeshift.coordinator.backends.emr import EmrBackend

        return EmrBackend(name, profile, ctx)
    if isinstance(profile, LivyProfile):
        from lakeshift.coordinator.backends.livy import LivyBackend

        return LivyBackend(name, profile, ctx)
    raise ConfigError(f"cluster {name}: unknown backend {type(profile).__name__}")
