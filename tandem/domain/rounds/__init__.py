"""Rounds of a task: the lifecycle (tandem.domain.rounds.lifecycle), the runner's outputs
(tandem.domain.rounds.outputs) and putting a round on GitHub (tandem.domain.rounds.apply). This is the interface
the runner protocol (app/rounds_api.py) and the CLI use; it is keyed by model, never by letter.
"""

from tandem.domain.rounds.lifecycle import (
    AwaitingRound,
    ClosedReason,
    RoundConflict,
    RoundStatus,
    Turn,
    awaiting_rounds,
    close_task,
    conversation,
    fail_first_round,
    open_first_round,
    record_change,
    report_runner_failure,
    round_id_of,
    round_view,
)
from tandem.domain.rounds.outputs import model_patch
from tandem.domain.rounds.outputs import submit as submit_outputs

__all__ = [
    "AwaitingRound",
    "ClosedReason",
    "RoundConflict",
    "RoundStatus",
    "Turn",
    "awaiting_rounds",
    "close_task",
    "conversation",
    "fail_first_round",
    "model_patch",
    "open_first_round",
    "record_change",
    "report_runner_failure",
    "round_id_of",
    "round_view",
    "submit_outputs",
]
