"""The emulator's GraphQL endpoint (tandem/sandbox/github/graphql_api.py): files read as GitHub
answers them, through githubkit's GraphQL client, with GitHub's access rules and error shapes."""

from __future__ import annotations

import httpx
import pytest
from githubkit import AppInstallationAuthStrategy
from githubkit.exception import GraphQLFailed

from tests.test_emulator import World

FILES = """
query($owner: String!, $name: String!, $expression: String!) {
  repository(owner: $owner, name: $name) {
    nameWithOwner
    object(expression: $expression) { __typename oid ... on Blob { byteSize isBinary isTruncated text } }
  }
}
"""


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    yield w
    w.stop()


def ask(world: World, owner: str, name: str, expression: str) -> dict:
    return world.gh.graphql.request(FILES, {"owner": owner, "name": name, "expression": expression})


def test_a_file_a_directory_and_nothing_at_the_default_branch_or_a_ref(world):
    world.emu.commit_files("evals-org/mlflow", {"notes.bin": b"\x00\x01", "src/app.py": "v2\n"}, branch="next")
    file = ask(world, "evals-org", "mlflow", "HEAD:README.md")["repository"]
    assert file["nameWithOwner"] == "evals-org/mlflow"
    assert file["object"] == {
        "__typename": "Blob",
        "oid": world.repo.git.entry_at(world.repo.git.resolve("main"), "README.md").sha,
        "byteSize": 3,
        "isBinary": False,
        "isTruncated": False,
        "text": "hi\n",
    }
    assert ask(world, "evals-org", "mlflow", "HEAD:src")["repository"]["object"]["__typename"] == "Tree"
    assert ask(world, "evals-org", "mlflow", "HEAD:missing.yml")["repository"]["object"] is None
    assert ask(world, "evals-org", "mlflow", "next:src/app.py")["repository"]["object"]["text"] == "v2\n"
    binary = ask(world, "evals-org", "mlflow", "next:notes.bin")["repository"]["object"]
    assert (binary["isBinary"], binary["text"], binary["byteSize"]) == (True, None, 2)
    assert ask(world, "evals-org", "mlflow", "no-such-branch:README.md")["repository"]["object"] is None


def test_a_repository_out_of_reach_is_null_with_not_found_beside_the_rest(world):
    """Two repositories in one query: the one the installation cannot see is null and named in
    `errors`; the other is answered (GitHub's partial answer, 200)."""
    world.emu.create_repository("evals-org", "secret", files={"a": "b"}, private=True)
    query = """query {
      mine: repository(owner: "evals-org", name: "mlflow") { object(expression: "HEAD:README.md") { oid } }
      theirs: repository(owner: "evals-org", name: "secret") { object(expression: "HEAD:a") { oid } }
    }"""
    with pytest.raises(GraphQLFailed) as info:
        world.gh.graphql.request(query)
    answer = info.value.response
    assert answer.data["mine"]["object"]["oid"] and answer.data["theirs"] is None
    [error] = answer.errors
    assert (error.type, error.path) == ("NOT_FOUND", ["theirs"])
    assert error.message == "Could not resolve to a Repository with the name 'evals-org/secret'."


def test_a_private_file_needs_the_contents_permission(world):
    app = world.emu.register_app(slug="issues-only", name="Issues only", permissions={"issues": "write"})
    installation = world.emu.install_app("evals-org", repositories=["mlflow"], app=app)
    client = world.client(AppInstallationAuthStrategy(app.id, app.private_key_pem, installation.id))
    world.repo.private = True
    with pytest.raises(GraphQLFailed) as info:
        client.graphql.request(FILES, {"owner": "evals-org", "name": "mlflow", "expression": "HEAD:README.md"})
    assert [error.type for error in info.value.response.errors] == ["FORBIDDEN"]


def test_callers_limits_and_counts(world):
    url = f"{world.emu.url}/graphql"
    query = {"query": '{ repository(owner: "evals-org", name: "mlflow") { nameWithOwner } }'}
    assert httpx.post(url, json=query).status_code == 401
    assert httpx.post(url, json=query, headers={"Authorization": f"Bearer {world.jwt()}"}).status_code == 403
    world.emu.reset_requests()
    answer = httpx.post(url, json=query, headers={"Authorization": f"token {world.token()}"})
    assert answer.status_code == 200
    assert answer.json() == {"data": {"repository": {"nameWithOwner": "evals-org/mlflow"}}}
    assert answer.headers["x-ratelimit-resource"] == "graphql"
    # A query is a read: it takes nothing from the REST limit and is not counted as a write.
    assert answer.headers["x-ratelimit-used"] == "1"
    assert world.emu.write_count(world.inst.id) == 0
    mutation = httpx.post(
        url, json={"query": "mutation { addStar }"}, headers={"Authorization": f"token {world.token()}"}
    )
    assert mutation.status_code == 200 and mutation.json()["errors"]
    assert "data" not in mutation.json()
