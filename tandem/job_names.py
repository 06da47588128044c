"""The dotted paths of Tandem's job functions, in one place: whoever queues a job names it from
here, so the web process and the domain never import the workers to queue one, and a job
function that moves is renamed once. (Queued jobs carry these names: moving a function breaks
the jobs queued under its old name.) tests/test_architecture.py checks each resolves."""

PROCESS_DELIVERY = "workers.deliveries.process_delivery"
