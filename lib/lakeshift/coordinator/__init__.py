"""Coordinator: a plan of many tables fanned out as jobs over several Spark clusters.

Pieces: :mod:`~lakeshift.coordinator.plan` (plan file, DAG), :mod:`~.clusters` (cluster
profiles), :mod:`~.fsm` (per-table state machine), :mod:`~.store` (durable state + audit log),
:mod:`~.scheduler` (batching, retries, resume), :mod:`~.backends` (spark-submit, EMR, Livy, fake),
:mod:`~.dashboard` (status view, HTML report) and :mod:`~.estimate` (transfer-time planner).
"""

from __future__ import annotations
