"""Rounds of a task: the lifecycle (tandem.rounds.lifecycle), the runner's outputs
(tandem.rounds.outputs) and putting a round on GitHub (tandem.rounds.apply). This is the interface
the runner protocol (app/rounds_api.py) and the CLI use; it is keyed by model, never by letter.
"""

from tandem.rounds.lifecycle import (
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
from tandem.rounds.outputs import model_patch
from tandem.rounds.outputs import submit as submit_outputs

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
