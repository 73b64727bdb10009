"""The table lifecycle as a finite-state machine: states and the allowed transitions, as data.

A table walks the migration lifecycle::

    PENDING → START_POINT → LOADING → CATCHING_UP → VALIDATING → (REPAIRING → VALIDATING)*
            → READY → CUT_OVER → DONE

* ``START_POINT`` records the sync position (lake CDF version, file manifest, change-stream
  token) *before* the bulk load, so nothing written during the load is lost;
* ``LOADING`` runs the bulk load (``copy``, ``files``, ``transform`` or a script);
* ``CATCHING_UP`` runs ``sync --once`` rounds until the lag is under the table's threshold;
* ``VALIDATING`` applies the deviation gate; a failed gate may go to ``REPAIRING`` and back;
* ``READY`` waits for an approval (``lakeshift approve``) — a dual-run table keeps syncing here;
* ``CUT_OVER`` runs the final catch-up and validation, switches the metastore and writes the
  path routing; ``DONE`` is migrated. ``lakeshift rollback`` takes a cut-over table back to READY.

A state says which phase the table is in; whether that phase's job is waiting for a slot or
running is the job's business (``tables.token`` and the ``jobs`` table). ``FAILED`` (permanent
error, retries or repair rounds exhausted), ``STOPPED`` (by the operator) and ``PAUSED`` (by the
operator, jobs of the phase allowed to finish) remember the state to go back to on ``resume``.

Example:
    >>> check_transition(State.PENDING, State.START_POINT)
    >>> is_allowed(State.VALIDATING, State.DONE)
    False
    >>> State.LOADING in PHASES
    True
"""

from __future__ import annotations

from enum import Enum

from lakeshift.errors import LakeshiftError


class State(str, Enum):
    """A table's state."""

    PENDING = "PENDING"
    START_POINT = "START_POINT"
    LOADING = "LOADING"
    CATCHING_UP = "CATCHING_UP"
    VALIDATING = "VALIDATING"
    REPAIRING = "REPAIRING"
    READY = "READY"
    CUT_OVER = "CUT_OVER"
    DONE = "DONE"
    FAILED = "FAILED"
    STOPPED = "STOPPED"
    PAUSED = "PAUSED"


S = State

#: The lifecycle phases in order (a table skips the ones its plan entry does not need).
LIFECYCLE: tuple[State, ...] = (
    S.PENDING,
    S.START_POINT,
    S.LOADING,
    S.CATCHING_UP,
    S.VALIDATING,
    S.READY,
    S.CUT_OVER,
    S.DONE,
)
#: States in which a job of the table runs (or waits for a slot to run).
PHASES: frozenset[State] = frozenset(
    {S.START_POINT, S.LOADING, S.CATCHING_UP, S.VALIDATING, S.REPAIRING, S.CUT_OVER}
)
#: States the operator can interrupt (stop / pause) and a failure can leave.
_INTERRUPTIBLE = frozenset({S.PENDING, *PHASES, S.READY})
#: Where an operator or an error can take a table from any running state.
_OUT = frozenset({S.FAILED, S.STOPPED, S.PAUSED})


def _forward(src: State) -> frozenset[State]:
    """Every later lifecycle state (phases a table does not need are skipped)."""
    i = LIFECYCLE.index(src)
    later = set(LIFECYCLE[i + 1 :])
    later.discard(S.DONE)  # only CUT_OVER ends in DONE
    return frozenset(later)


#: Every allowed ``from → {to}`` move. Anything else is rejected by :func:`check_transition`.
TRANSITIONS: dict[State, frozenset[State]] = {
    S.PENDING: _forward(S.PENDING) | _OUT,
    S.START_POINT: _forward(S.START_POINT) | _OUT,
    S.LOADING: _forward(S.LOADING) | _OUT,
    # a dual run keeps CATCHING_UP until approval; the last round may go straight to READY
    S.CATCHING_UP: frozenset({S.VALIDATING, S.READY}) | _OUT,
    S.VALIDATING: frozenset({S.REPAIRING, S.READY, S.CUT_OVER}) | _OUT,
    S.REPAIRING: frozenset({S.VALIDATING}) | _OUT,
    # READY → CATCHING_UP: a dual-run sync round; READY → CUT_OVER: approved
    S.READY: frozenset({S.CATCHING_UP, S.CUT_OVER}) | _OUT,
    S.CUT_OVER: frozenset({S.DONE, S.READY}) | _OUT,
    # rollback of a cut-over (READY), or a re-run from the start (PENDING)
    S.DONE: frozenset({S.READY, S.PENDING}),
    # resume returns to the remembered state; re-run starts again
    S.FAILED: frozenset(_INTERRUPTIBLE),
    S.STOPPED: frozenset(_INTERRUPTIBLE),
    S.PAUSED: frozenset(_INTERRUPTIBLE) | frozenset({S.STOPPED, S.FAILED}),
}

#: States in which the coordinator has nothing to do for the table.
TERMINAL: frozenset[State] = frozenset({S.DONE, S.FAILED, S.STOPPED})
#: States the operator has to act on (approve, resume, investigate).
WAITS_FOR_OPERATOR: frozenset[State] = frozenset({S.READY, S.FAILED, S.STOPPED, S.PAUSED})


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
