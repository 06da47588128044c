"""The judging domain: votes, ratings, follow-up rounds, reviews and line comments.

Pure domain on a SQLAlchemy Session: no GitHub, no HTTP, no queue. Each write takes a
CommentContext (the pair, the comment, the repository's rules) and raises Refused with a message
for the comment's author when the rules refuse it. The commands (tandem.domain.commands) call in with
their CommandContext, inside the worker's delivery transaction.

Four rules hold everywhere:

* Nothing is deleted. A newer version of a judgment or rating supersedes the older one
  (superseded_at, superseded_reason: revote, edited, undo, deleted); a retraction is a
  supersession by nothing. A follow-up round whose comment is deleted is withdrawn, not removed.
* The comments' own times decide, never the order they are processed in. Deliveries come late,
  twice and out of order (retries, rate-limit reschedules, several workers, redelivery after an
  outage, newest first). Every version of a comment is logged with its time, retractions
  included (an edit that removes the /prefer or a score, an /undo, a deletion), and so are
  versions that leave a vote as it was; a rater's judgments and ratings in a round are derived
  from that whole log in the order it was written (tandem.domain.history), so processing the same
  comments, edits, deletions and /undos in any order ends in the same records. A comment acts in
  the round that was current when it was written, and an /undo or a review acts on the vote as
  it stood when it was written.
* Every write is idempotent per comment version: processing the same comment (or delivery) twice
  records it once, and replaying an old comment never undoes what later comments did.
* Writes on one task are serialized by locking the task's row (PostgreSQL; SQLite serializes
  every write anyway), and everything a write depends on, its round included, is read after the
  lock, so concurrent workers cannot leave a rater with two current votes.

What the records still cannot tell: when a comment was deleted (GitHub does not say), so a
deletion counts from the comment's last version (see tandem.domain.history: the outcome is the same);
and which of two versions of one comment written in the same second is the later one (GitHub's
times are whole seconds): the one processed last is kept. A follow-up whose comment is deleted
after a vote was placed in its round leaves that vote in the withdrawn round.
"""

from tandem.domain.judging.context import (
    CommentContext,
    CommentRef,
    FollowupRules,
    Progress,
    ReviewRules,
    Vote,
)
from tandem.domain.judging.reviews import (
    comment_deleted,
    delete_line_comment,
    record_line_comment,
    resubmitted,
    review,
    settle_review_state,
)
from tandem.domain.judging.rounds import (
    current_round,
    ensure_first_round,
    record_followup,
    round_number,
    round_of_comment,
)
from tandem.domain.judging.standing import progress
from tandem.domain.judging.votes import (
    current_judgment,
    current_ratings,
    ratings_edited,
    record_judgment,
    record_ratings,
    undo,
)
from tandem.domain.repo_config import Rubric
from tandem.domain.vocabulary import SIDES, ReviewDecision, ReviewState
from tandem.infra.errors import Refused

__all__ = [
    "SIDES",
    "CommentContext",
    "CommentRef",
    "FollowupRules",
    "Progress",
    "Refused",
    "ReviewDecision",
    "ReviewRules",
    "ReviewState",
    "Rubric",
    "Vote",
    "comment_deleted",
    "current_judgment",
    "current_ratings",
    "current_round",
    "delete_line_comment",
    "ensure_first_round",
    "progress",
    "ratings_edited",
    "record_followup",
    "record_judgment",
    "record_line_comment",
    "record_ratings",
    "resubmitted",
    "review",
    "round_number",
    "round_of_comment",
    "settle_review_state",
    "undo",
]
