"""The layering: the web side (app/) never imports the workers, and every named job resolves."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from tandem.infra import job_names

ROOT = Path(__file__).parent.parent


def _imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_no_module_of_the_web_side_imports_the_workers():
    offenders = {
        str(path.relative_to(ROOT)): sorted(n for n in _imported(path) if n == "workers" or n.startswith("workers."))
        for path in (ROOT / "app").rglob("*.py")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def loaded_by(statement: str, *packages: str) -> list[str]:
    """The modules of ``packages`` that a fresh interpreter has loaded after ``statement``."""
    script = f"import sys\n{statement}\nprint(sorted(sys.modules))"
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    return [name for name in ast.literal_eval(out.stdout) if any(name.startswith(p) for p in packages)]


def test_the_web_process_loads_no_worker_module():
    """Not even through the domain: the app, created, has loaded none of workers/."""
    assert loaded_by("from app.main import create_app", "workers") == []


def test_the_command_line_loads_neither_alembic_nor_the_sandboxs_github_until_a_command_needs_them():
    """Every `tandem` command paid ~0.7 s to import them, most of them never migrating or sandboxing."""
    assert loaded_by("import cli.main", "alembic", "tandem.sandbox.github") == []


def test_the_commands_that_read_the_database_load_neither_githubs_client_nor_redis():
    """`tandem stats` and `tandem export` paid ~0.4 s of start-up for GitHub's client and RQ."""
    assert loaded_by("import cli.main", "githubkit", "httpx", "rq", "redis") == []
    assert loaded_by("from cli.common import load_storage; load_storage()", "githubkit", "rq", "redis") == []


def test_every_job_name_is_a_job_function():
    named = {path for name, path in vars(job_names).items() if isinstance(path, str) and path.startswith("workers.")}
    assert named == set(job_names.VERSIONS)
    for path in named:
        module, _, function = path.rpartition(".")
        assert callable(getattr(importlib.import_module(module), function, None)), path


def test_a_handler_for_an_event_not_in_the_table_is_refused():
    from workers.router import Router

    with pytest.raises(ValueError, match="fork"):
        Router().register("fork")


def test_redis_keys_are_named_only_in_tandem_redis_keys():
    labels = {"tandem:pending", "tandem:judged", "tandem:approved"}  # GitHub labels (tandem.domain.repo_config)
    found = []
    for path in [*(ROOT / "tandem").rglob("*.py"), *(ROOT / "workers").rglob("*.py"), *(ROOT / "app").rglob("*.py")]:
        if path.name == "redis_keys.py" or "sandbox" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            head = node.values[0] if isinstance(node, ast.JoinedStr) and node.values else node
            text = head.value if isinstance(head, ast.Constant) and isinstance(head.value, str) else ""
            if text.startswith("tandem:") and text not in labels:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text!r}")
    assert found == []


def test_jobs_are_queued_by_name():
    """Whoever queues a job names it from tandem.infra.job_names, never by the function: that would
    import the workers' modules and scatter the names queued jobs depend on."""
    jobs = {path.rpartition(".")[2] for path in job_names.VERSIONS}
    queueing = {
        "enqueue",
        "enqueue_at",
        "enqueue_in",
        "enqueue_call",
        "enqueue_after_commit",
        "coalesce",
        "prepare_data",
    }
    calls = []
    for path in [*(ROOT / "tandem").rglob("*.py"), *(ROOT / "workers").rglob("*.py"), *(ROOT / "app").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in queueing:
                for argument in node.args:
                    name = argument.id if isinstance(argument, ast.Name) else getattr(argument, "attr", None)
                    if name in jobs and not (
                        isinstance(argument, ast.Attribute) and ast.unparse(argument.value) == "job_names"
                    ):
                        calls.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(argument)}")
    assert calls == []


def test_an_export_to_json_lines_loads_neither_pyarrow_nor_the_judging_side():
    """pyarrow: ~60 MB of an export's memory and 0.2 s of its start-up, for Parquet only; the
    judging side (GitHub's client, RQ, Redis), imported for two enums and a tuple: 0.6 s more."""
    statement = "import cli.data; from tandem.domain.export_formats import write"
    assert loaded_by(statement, "pyarrow", "githubkit", "rq", "redis", "tandem.domain.judging") == []
