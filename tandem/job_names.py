"""The dotted paths of Tandem's job functions, in one place: whoever queues a job names it from
here, so the web process and the domain never import the workers to queue one, and a job
function that moves is renamed once. (Queued jobs carry these names: moving a function breaks
the jobs queued under its old name.) tests/test_architecture.py checks each resolves."""

PROCESS_DELIVERY = "workers.deliveries.process_delivery"
OPEN_PAIR = "workers.pairs.open_pair"
APPLY_ROUND = "workers.rounds.apply_round"
ANNOUNCE_ROUND = "workers.rounds.announce_round"
ACKNOWLEDGE = "workers.responses.acknowledge"
ASK_REVIEWERS_AGAIN = "workers.responses.ask_reviewers_again"
TELL_CI_FINISHED = "workers.responses.tell_ci_finished"
SYNC_PAIR = "workers.responses.sync_pair"
DELIVER_RUNNER_EVENT = "workers.runner_events.deliver_runner_event"
REDELIVER_MISSED_WEBHOOKS = "workers.schedule.redeliver_missed_webhooks"
