"""The domain: tasks, pairs, commands, judging, rounds, export and statistics."""
