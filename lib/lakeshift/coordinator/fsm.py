"""The per-table finite-state machine: states and the allowed transitions, as data.

A table walks ``PENDING → SUBMITTED → RUNNING → COPIED → SYNCING → VALIDATING → DONE``.
``COPIED`` means "the bulk step has landed and the next step waits for a slot"; a table that has
both a sync and a validate step goes back to ``COPIED`` between them. Retries of the bulk step
return to ``PENDING``, retries of later steps to ``COPIED``. ``FAILED`` (permanent error or
retries exhausted) and ``STOPPED`` (by the operator) are terminal until a re-run or resume.

Example:
    >>> check_transition(State.PENDING, State.SUBMITTED)
    >>> is_allowed(State.DONE, State.RUNNING)
    False
"""

from __future__ import annotations

from enum import Enum

from lakeshift.errors import LakeshiftError


class State(str, Enum):
    """A table's state."""

    PENDING = "PENDING"
    SUBMITTED = "SUBMITTED"
    RUNNING = "RUNNING"
    COPIED = "COPIED"
    SYNCING = "SYNCING"
    VALIDATING = "VALIDATING"
    DONE = "DONE"
    FAILED = "FAILED"
    STOPPED = "STOPPED"


S = State

#: Every allowed ``from → {to}`` move. Anything else is rejected by :func:`check_transition`.
TRANSITIONS: dict[State, frozenset[State]] = {
    S.PENDING: frozenset({S.SUBMITTED, S.FAILED, S.STOPPED}),
    S.SUBMITTED: frozenset({S.RUNNING, S.COPIED, S.PENDING, S.FAILED, S.STOPPED}),
    S.RUNNING: frozenset({S.COPIED, S.PENDING, S.FAILED, S.STOPPED}),
    S.COPIED: frozenset({S.SYNCING, S.VALIDATING, S.DONE, S.FAILED, S.STOPPED}),
    S.SYNCING: frozenset({S.COPIED, S.VALIDATING, S.DONE, S.FAILED, S.STOPPED}),
    S.VALIDATING: frozenset({S.COPIED, S.DONE, S.FAILED, S.STOPPED}),
    S.DONE: frozenset({S.PENDING}),  # re-run
    S.FAILED: frozenset({S.PENDING, S.COPIED}),  # re-run / resume at the failed step
    S.STOPPED: frozenset({S.PENDING, S.COPIED}),  # resume
}

#: States in which the coordinator has nothing to do for the table.
TERMINAL: frozenset[State] = frozenset({S.DONE, S.FAILED, S.STOPPED})
#: States in which a job of the table is submitted or running on a cluster.
ACTIVE: frozenset[State] = frozenset({S.SUBMITTED, S.RUNNING, S.SYNCING, S.VALIDATING})
#: States in which the table waits for a free slot for its next step.
WAITING: frozenset[State] = frozenset({S.PENDING, S.COPIED})


class IllegalTransitionError(LakeshiftError):
    """A state change that :data:`TRANSITIONS` does not allow."""


def is_allowed(src: State, dst: State) -> bool:
    """Whether ``src → dst`` is an allowed transition."""
    return dst in TRANSITIONS[src]


def check_transition(src: State, dst: State, table: str = "") -> None:
    """Raise :class:`IllegalTransitionError` unless ``src → dst`` is allowed.

    Raises:
        IllegalTransitionError: the move is not in :data:`TRANSITIONS`.
    """
    if not is_allowed(src, dst):
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[src])) or "none"
        where = f"table {table}: " if table else ""
        raise IllegalTransitionError(
            f"{where}illegal state change {src.value} -> {dst.value}; allowed from "
            f"{src.value}: {allowed}"
        )


def active_state_for(kind_phase: str, step: int) -> State:
    """The state a table is in while a job of ``kind_phase`` runs.

    ``load`` steps (copy, transform, files) use ``SUBMITTED``; ``sync`` uses ``SYNCING``;
    ``validate`` uses ``VALIDATING``; any other later step counts as ``SYNCING``.
    """
    if step == 0 or kind_phase == "load":
        return S.SUBMITTED
    if kind_phase == "validate":
        return S.VALIDATING
    return S.SYNCING
