#!/usr/bin/env python3
"""A tiny deterministic coding agent for `tandem runner` (and Tandem's tests).

Run in the model's worktree, it records the newest prompt in NOTES.md under a mark that tells the
models apart without revealing them: an HMAC of the model's name under a key the raters never see
(ECHO_AGENT_KEY; a random one when unset). What an agent writes lands on the blinded PRs, and a
plain hash of a model's name is undone by hashing the few likely names. Every round adds one entry:

    tandem runner --command 'python3 examples/agents/echo_agent.py' --url http://localhost:8000

It reads what the runner gives every agent: TANDEM_MODEL, TANDEM_TASK, TANDEM_ROUND and
TANDEM_PROMPT in its environment, and the whole conversation as JSON on stdin.
"""

import hashlib
import hmac
import json
import os
import secrets
import sys
from pathlib import Path


def main() -> int:
    conversation = json.load(sys.stdin)
    key = os.environ.get("ECHO_AGENT_KEY", "").encode() or secrets.token_bytes(16)
    mark = hmac.new(key, os.environ["TANDEM_MODEL"].encode(), hashlib.sha256).hexdigest()[:8]
    number = os.environ["TANDEM_ROUND"]
    notes = Path("NOTES.md")
    text = notes.read_text() if notes.exists() else "# Notes\n"
    text += (
        f"\n## Round {number} ({len(conversation)} prompts so far), by agent {mark}\n\n{os.environ['TANDEM_PROMPT']}\n"
    )
    notes.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
