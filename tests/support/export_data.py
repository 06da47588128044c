"""Tasks to export, for the export tests: what each format must give is known from them."""

from __future__ import annotations

from tandem.domain import rounds
from tandem.infra.models import Pair
from tests.support.judging import deliver, new_pair, open_round

REVIEWER = {"who": "rev", "roles": ("reviewer",)}
DIFF = {
    (1, "A"): "--- a/pager.py\n+++ b/pager.py\n@@ -1 +1 @@\n-page = 1\n+page = 0\n",
    (1, "B"): "--- a/pager.py\n+++ b/pager.py\n@@ -1 +1 @@\n-page = 1\n+page = max(0, page)\n",
    (2, "A"): "--- a/pager.py\n+++ b/pager.py\n@@ -1 +1,2 @@\n-page = 1\n+page = 0\n+# tested\n",
    (2, "B"): "--- a/pager.py\n+++ b/pager.py\n@@ -1 +1,2 @@\n-page = 1\n+page = max(0, page)\n+# tested\n",
}


def build(storage) -> dict[str, int]:
    """Three tasks:
    - single: one round, three raters (B much, A slightly, neither) approved, one pending vote (dave),
      scores from a rater who never voted (eve); no side changes recorded (older rows);
    - multi: two rounds with recorded side changes, votes in each (A and a tie, then B), and a
      third round asked for that never got a vote;
    - theirs: another team's task, with an approved vote.
    """
    single = new_pair(
        storage, models=("model-x", "model-y"), a_is_first=False, prompt="Fix the pager", metadata={"suite": "s1"}
    )
    with storage.transaction() as session:
        for output in session.get(Pair, single).task.outputs:
            output.patch = f"patch of {output.model}\n"
    deliver(storage, single, "/prefer B much\nA crashes on page 0.\n/rate B correctness=5", comment_id=1)
    deliver(storage, single, "/prefer A slightly\nA is shorter.", "bob", comment_id=2)
    deliver(storage, single, "/prefer neither", "carol", comment_id=3)
    for rater in ("alice", "bob", "carol"):
        deliver(storage, single, f"/approve @{rater}", **REVIEWER)
    deliver(storage, single, "/prefer A", "dave", comment_id=4)
    deliver(storage, single, "/rate A correctness=2", "eve", comment_id=5)

    multi = new_pair(storage, models=("model-x", "model-y"), prompt="Fix the pager", metadata={"suite": "s2"})
    open_round(storage, multi, 1)
    deliver(storage, multi, "/prefer A\nSmaller.", comment_id=10)
    deliver(storage, multi, "/prefer tie", "bob", comment_id=14)
    for rater in ("alice", "bob"):
        deliver(storage, multi, f"/approve @{rater}", **REVIEWER)
    deliver(storage, multi, "/followup Add a test.", comment_id=11)
    open_round(storage, multi, 2)
    with storage.transaction() as session:
        for round_ in session.get(Pair, multi).task.rounds:
            for letter in "AB":
                rounds.record_change(
                    round_, letter, DIFF[(round_.number, letter)], {"pager.py": f"{letter}{round_.number}\n"}
                )
    deliver(storage, multi, "/prefer B clearly\nB's test covers page 0.", comment_id=12)
    deliver(storage, multi, "/approve @alice", **REVIEWER)
    deliver(storage, multi, "/followup Document it.", comment_id=13)

    theirs = new_pair(storage, models=("model-p", "model-q"), prompt="Their secret task")
    deliver(storage, theirs, "/prefer A", comment_id=20)
    deliver(storage, theirs, "/approve @alice", **REVIEWER)
    with storage.transaction() as session:
        session.get(Pair, theirs).task.team = "other-team"
        ids = {
            name: session.get(Pair, pair_id).task_id
            for name, pair_id in (("single", single), ("multi", multi), ("theirs", theirs))
        }
    return ids
