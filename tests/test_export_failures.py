"""`tandem export` when it fails: the disk fills, the database goes away, Ctrl-C, a wrong path.

A nightly job takes the file at the destination as a whole export, so a failed export must leave
none (nor its temporary file, nor a next cursor), say why in one line, and exit 1, without hanging.
Each runs the installed `tandem` as a process; failures mid-way are timed by a hook in that
process (a sitecustomize module on its PYTHONPATH) rather than by sleeping.
"""

from __future__ import annotations

import os
import resource
import stat
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_URL
from tests.support.cli import TANDEM, one_error_line, run
from tests.support.judging import make_pair, many_votes

# Batches of 100, then 5000: the failure comes with most still unread. Streamed to a pipe that is
# not read, the export stops writing within the second batch; with two more read ahead, the
# reader must still be reading the fifth then (with 12,000 rows it could be done and gone).
ROWS = 21_000

# In the export's process: on its first read of what goes with a batch of judgments (their
# scores), after the batch itself was read, either Ctrl-C (SIGINT) or end the export's connections
# to PostgreSQL from a connection of the hook's own, and wait until they are gone.
HOOK = """\
import os
import signal

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.pool import NullPool

_fired = False


@event.listens_for(Engine, "after_cursor_execute")
def _fail(conn, cursor, statement, parameters, context, executemany):
    global _fired
    if _fired or "FROM ratings" not in statement or "GROUP BY" in statement:
        return
    _fired = True
    what = os.environ["EXPORT_HOOK"]
    if what == "interrupt":
        os.kill(os.getpid(), signal.SIGINT)
        return
    reader = conn.connection.dbapi_connection.info.backend_pid
    which = {"reader": "pid = :reader", "session": "pid <> :reader", "both": "true"}[what]
    admin = create_engine(os.environ["EXPORT_HOOK_ADMIN_URL"], poolclass=NullPool)
    with admin.connect() as other:
        ended = other.execute(
            text(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 10000)) FROM pg_stat_activity "
                f"WHERE application_name = :name AND pid <> pg_backend_pid() AND {which}"
            ),
            {"name": os.environ["EXPORT_HOOK_APPLICATION"], "reader": reader},
        ).scalar_one()
    admin.dispose()
    assert ended == {"reader": 1, "session": 1, "both": 2}[what], ended
"""


def add_judgments(storage, total: int) -> None:
    with storage.transaction() as session:
        pair = make_pair(session)
        many_votes(session, pair, total, lambda i: f"reason {i} " + "x" * 200)


def cli_env(database_url: tuple[str, str | None]) -> dict[str, str]:
    """The environment of a `tandem` process that needs only the database."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")} | {
        "TANDEM_DATABASE_URL": database_url[0]
    }


@pytest.fixture
def export_env(storage, database_url) -> dict[str, str]:
    add_judgments(storage, ROWS)
    return cli_env(database_url)


def tandem(env: dict[str, str], *args: str, cwd: Path, hook: str | None = None, **popen) -> subprocess.CompletedProcess:
    if hook is not None:
        hooks = cwd / "hooks"
        hooks.mkdir(exist_ok=True)
        (hooks / "sitecustomize.py").write_text(HOOK)
        env = env | {"EXPORT_HOOK": hook, "PYTHONPATH": os.pathsep.join([str(hooks), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [TANDEM, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False, **popen
    )


def left_in(directory: Path) -> set[str]:
    return {path.name for path in directory.iterdir()}


def file_size_limit(size: int):
    """For the export's process: a file may grow to ``size`` bytes, then writing it fails as on a
    full disk (EFBIG; Python ignores the SIGXFSZ that comes with it)."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


@pytest.mark.parametrize("name", ["out.jsonl", "out.parquet"])
def test_a_full_disk_leaves_no_file_and_no_cursor(export_env, tmp_path, name):
    out = tmp_path / "exports"
    out.mkdir()
    result = tandem(
        export_env,
        "export",
        str(out / name),
        "--cursor-out",
        str(out / "cursor"),
        cwd=tmp_path,
        preexec_fn=file_size_limit(256 * 1024),
    )
    assert "File too large" in one_error_line(result)
    assert result.returncode == 1
    assert left_in(out) == set()


def test_ctrl_c_leaves_no_file(export_env, database_url, tmp_path):
    out = tmp_path / "exports"
    out.mkdir()
    result = tandem(export_env, "export", str(out / "out.jsonl"), cwd=tmp_path, hook="interrupt")
    assert result.returncode == 130
    assert left_in(out) == set()
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("ended", ["reader", "session", "both"])
def test_the_database_going_away_mid_export_leaves_no_file(export_env, tmp_path, ended):
    """The export's connections end while it runs: the session's (in whose snapshot it reads),
    the one reading ahead in a thread, or both."""
    name = f"tandem-export-{uuid.uuid4().hex[:8]}"
    env = export_env | {
        "TANDEM_DATABASE_URL": f"{export_env['TANDEM_DATABASE_URL']}&application_name={name}",
        "EXPORT_HOOK_ADMIN_URL": POSTGRES_URL,
        "EXPORT_HOOK_APPLICATION": name,
    }
    out = tmp_path / "exports"
    out.mkdir()
    result = tandem(
        env, "export", str(out / "out.jsonl"), "--cursor-out", str(out / "cursor"), cwd=tmp_path, hook=ended
    )
    assert "database cannot be reached" in one_error_line(result)
    assert result.returncode == 1
    assert left_in(out) == set()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_database_going_away_mid_export_to_standard_output(export_env, tmp_path, postgres_admin):
    """Streamed: the lines written so far are out, but the exit status says the export failed."""
    from sqlalchemy import text

    name = f"tandem-export-{uuid.uuid4().hex[:8]}"
    env = export_env | {"TANDEM_DATABASE_URL": f"{export_env['TANDEM_DATABASE_URL']}&application_name={name}"}
    with subprocess.Popen(
        [TANDEM, "export", "-"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as export:
        assert export.stdout is not None and export.stderr is not None
        first = export.stdout.readline()  # the first batch is out: the rest is being read
        assert first.startswith(b"{")
        with postgres_admin.connect() as admin:
            ended = admin.execute(
                text(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 10000)) FROM pg_stat_activity "
                    "WHERE application_name = :name"
                ),
                {"name": name},
            ).scalar_one()
        assert ended == 2  # the session's connection and the reader's
        rest, errors = export.communicate(timeout=60)
    assert len(rest.splitlines()) + 1 < ROWS
    assert export.returncode == 1
    lines = errors.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: database cannot be reached"), errors


def test_an_unreachable_database_is_one_line_and_no_file(tmp_path):
    result = run(
        "export",
        str(tmp_path / "out.jsonl"),
        cwd=tmp_path,
        TANDEM_DATABASE_URL="postgresql://postgres@127.0.0.1:1/test",
    )
    assert "database cannot be reached" in one_error_line(result)
    assert result.returncode == 1
    assert not (tmp_path / "out.jsonl").exists()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".out.jsonl")] == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_destination_in_no_directory_or_a_directory_is_one_line(storage, database_url, tmp_path):
    env = cli_env(database_url)
    missing = tandem(env, "export", str(tmp_path / "nowhere" / "out.jsonl"), cwd=tmp_path)
    assert f"{tmp_path / 'nowhere'}: no such directory" in one_error_line(missing)
    assert not (tmp_path / "nowhere").exists()
    (tmp_path / "dir").mkdir()
    directory = tandem(env, "export", str(tmp_path / "dir"), cwd=tmp_path)
    assert f"{tmp_path / 'dir'}: is a directory" in one_error_line(directory)
    assert left_in(tmp_path / "dir") == set()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_cursor_out_in_no_directory_is_refused_before_the_export(storage, database_url, tmp_path):
    env = cli_env(database_url)
    result = tandem(
        env, "export", str(tmp_path / "out.jsonl"), "--cursor-out", str(tmp_path / "no" / "c"), cwd=tmp_path
    )
    assert f"{tmp_path / 'no'}: no such directory" in one_error_line(result)
    assert not (tmp_path / "out.jsonl").exists()


def test_a_complete_export_is_in_place_with_the_usual_mode_and_its_cursor(export_env, tmp_path):
    out = tmp_path / "exports"
    out.mkdir()
    (out / "out.jsonl").write_text("yesterday's\n")
    result = tandem(export_env, "export", str(out / "out.jsonl"), "--cursor-out", str(out / "cursor"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert left_in(out) == {"out.jsonl", "cursor"}
    assert len((out / "out.jsonl").read_bytes().splitlines()) == ROWS
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((out / "out.jsonl").stat().st_mode) == 0o666 & ~umask


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_named_pipe_is_written_in_place(storage, database_url, tmp_path):
    """A destination that is not a regular file (a named pipe, /dev/null) is written to, not
    replaced by a file of the export."""
    add_judgments(storage, 3)
    env = cli_env(database_url)
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    # Open for reading first, without waiting for a writer: the export's open then does not wait,
    # and its few lines fit in the pipe's buffer.
    reading = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK)
    try:
        result = tandem(env, "export", str(pipe), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert stat.S_ISFIFO(pipe.stat().st_mode)
        assert len(os.read(reading, 1 << 16).splitlines()) == 3
    finally:
        os.close(reading)


def test_standard_output_closed_early_ends_the_export(export_env, tmp_path):
    """`tandem export - | head -1`: the reader goes away; the export stops and ends, failed but
    silent, as a command in a pipe does (click's handling of a broken pipe)."""
    with subprocess.Popen(
        [TANDEM, "export", "-"], cwd=tmp_path, env=export_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as export:
        assert export.stdout is not None
        assert export.stdout.readline().startswith(b"{")
        export.stdout.close()
        _, errors = export.communicate(timeout=60)
    assert export.returncode == 1
    assert errors == b""


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_existing_export_keeps_its_mode_and_a_link_is_written_through(storage, database_url, tmp_path):
    """Written over as open() would: a file kept private (the export is de-blinded) stays so,
    rather than being replaced by a file anyone may read; a symbolic link stays a link, and the
    file it names gets the export."""
    add_judgments(storage, 3)
    env = cli_env(database_url)
    private = tmp_path / "private.jsonl"
    private.write_text("yesterday's\n")
    private.chmod(0o600)
    result = tandem(env, "export", str(private), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(private.read_bytes().splitlines()) == 3
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    (tmp_path / "data").mkdir()
    target = tmp_path / "data" / "judgments.jsonl"
    target.write_text("yesterday's\n")
    latest = tmp_path / "latest.jsonl"
    latest.symlink_to(target)
    result = tandem(env, "export", str(latest), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert latest.is_symlink()
    assert len(target.read_bytes().splitlines()) == 3
    assert left_in(tmp_path / "data") == {"judgments.jsonl"}
