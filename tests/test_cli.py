"""The `tandem` command on bad input: one clear line naming the problem, and a non-zero exit."""

from __future__ import annotations

import pytest

from tandem.infra.errors import ConfigError
from tandem.infra.settings import load_settings
from tests.conftest import make_settings
from tests.support.cli import one_error_line, run


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("not a url", "TANDEM_DATABASE_URL"),
        ("mysql://root@127.0.0.1/test", "not supported"),
        ("postgresql://postgres@127.0.0.1:1/test", "cannot be reached"),
    ],
)
def test_a_wrong_database_url_is_one_clear_line(tmp_path, url, named):
    line = one_error_line(run("db", "upgrade", cwd=tmp_path, TANDEM_DATABASE_URL=url))
    assert named in line


def test_an_unreachable_redis_is_one_clear_line(tmp_path):
    line = one_error_line(run("worker", "--burst", cwd=tmp_path, TANDEM_REDIS_URL="redis://127.0.0.1:1/0"))
    assert "Redis at redis://127.0.0.1:1/0 cannot be reached" in line


def test_a_missing_private_key_is_named(tmp_path):
    result = run(
        "doctor",
        cwd=tmp_path,
        TANDEM_APP_ID="1",
        TANDEM_WEBHOOK_SECRET="x",
        TANDEM_PRIVATE_KEY_PATH=str(tmp_path / "missing.pem"),
        TANDEM_REDIS_URL="redis://127.0.0.1:1/0",
    )
    assert result.returncode == 1
    assert f"FAIL  credentials: TANDEM_PRIVATE_KEY_PATH: no file at {tmp_path / 'missing.pem'}" in result.stdout
    assert "FAIL  redis: Redis at redis://127.0.0.1:1/0 cannot be reached" in result.stdout


def test_doctor_without_github_credentials_says_what_to_do(tmp_path, redis_url):
    result = run("doctor", cwd=tmp_path, TANDEM_REDIS_URL=redis_url)
    assert result.returncode == 1
    assert "FAIL  credentials: TANDEM_APP_ID: not set; run `tandem setup`" in result.stdout
    assert "ok    redis" in result.stdout
    assert "run `tandem db upgrade`" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_db_upgrade_then_doctor_finds_the_schema_current(tmp_path, redis_url):
    assert run("db", "upgrade", cwd=tmp_path).returncode == 0
    result = run("doctor", cwd=tmp_path, TANDEM_REDIS_URL=redis_url)
    assert "ok    database" in result.stdout


def test_a_malformed_setting_is_named_without_its_value():
    with pytest.raises(ConfigError, match="TANDEM_APP_ID") as error:
        load_settings(app_id="not-a-number-SECRETISH")
    assert "SECRETISH" not in str(error.value)


def test_secrets_never_show_in_repr(tmp_path):
    settings = make_settings(webhook_secret="hook-secret-value", private_key="-----BEGIN KEY----- key-value")
    assert "hook-secret-value" not in repr(settings)
    assert "key-value" not in repr(settings)


def test_a_private_key_that_is_not_pem_is_named(tmp_path):
    key = tmp_path / "key.pem"
    key.write_text("hello")
    with pytest.raises(ConfigError, match="TANDEM_PRIVATE_KEY_PATH: not a PEM private key"):
        make_settings(private_key_path=key).private_key_pem()


def test_tokens_are_created_listed_and_revoked(tmp_path):
    assert run("db", "upgrade", cwd=tmp_path).returncode == 0
    assert "unknown scope 'admin'" in one_error_line(
        run("token", "create", "--name", "lab", "--team", "lab-a", "--scope", "read,admin", cwd=tmp_path)
    )
    assert "Missing option '--scope'" in run("token", "create", "--name", "lab", cwd=tmp_path).stderr
    created = run("token", "create", "--name", "lab", "--team", "lab-a", "--scope", "submit,read", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("tandem_")

    listed = run("token", "list", cwd=tmp_path)
    assert listed.stdout.splitlines() == ["lab\tteam lab-a\tsubmit,read\tnever used\tlive"]
    assert token not in listed.stdout

    assert run("token", "revoke", "lab", cwd=tmp_path).stdout == "revoked lab\n"
    assert run("token", "list", cwd=tmp_path).stdout.split("\t")[-1].startswith("revoked ")
    assert "revoked already" in one_error_line(run("token", "revoke", "lab", cwd=tmp_path))
    assert "no token named 'nobody'" in one_error_line(run("token", "revoke", "nobody", cwd=tmp_path))


def test_installations_without_credentials_says_they_are_missing(tmp_path):
    line = one_error_line(run("installations", cwd=tmp_path))
    assert "no GitHub App credentials" in line and "tandem setup" in line
