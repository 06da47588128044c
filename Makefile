# Shortcuts for the scripts in scripts/ (the README's commands work without make).
.PHONY: install run test bench

install:
	scripts/install --test

run:
	scripts/start

test:
	scripts/test

bench:
	.venv/bin/python bench/webhooks.py
