"""Infrastructure: storage, queues, the inbox and outbox, GitHub and git, settings."""
