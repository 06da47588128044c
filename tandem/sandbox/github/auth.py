"""Authentication as GitHub does it for apps.

* ``Authorization: Bearer <JWT>`` authenticates as the app: RS256, signed with
  the app's private key, ``iss`` the app id (int or string) or client id,
  ``exp`` in the future, at most 10 minutes after ``iat`` and at most 10
  minutes from now, ``iat`` at most 60 s in the future. Failures answer 401
  with GitHub's own messages.
* ``Authorization: token <t>`` or ``Bearer <t>`` with an installation token
  (``ghs_...``) authenticates as that installation, until the token expires
  (1 hour) or is revoked.
* No ``Authorization``: anonymous, which GitHub allows for reads of public
  resources.

Also: which permission each operation needs (``PERMISSIONS``), answered in the
``x-accepted-github-permissions`` header and checked for installation tokens.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TypeVar

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .errors import ApiError, bad_credentials
from .state import App, Installation, Repository, State, Token
from .util import installation_token

T = TypeVar("T")

JWT_UNDECODABLE = "A JSON web token could not be decoded"
JWT_EXPIRED = (
    "'Expiration time' claim ('exp') must be a numeric value representing the future "
    "time at which the assertion expires"
)
JWT_TOO_LONG = "'Expiration time' claim ('exp') is too far in the future"
JWT_IAT_FUTURE = "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"
JWT_ISSUER = "'Issuer' claim ('iss') must be an Integer"
JWT_REQUIRED = "A JSON web token could not be decoded"

TOKEN_LIFETIME = 3600


def generate_private_key() -> tuple[str, object]:
    """A fresh RSA 2048 key: (PEM text as GitHub hands it out, public key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
    return pem, key.public_key()


@dataclass
class AuthInfo:
    kind: str  # "jwt" | "installation" | "none"
    app: App | None = None
    installation: Installation | None = None
    token: Token | None = None

    @property
    def installation_id(self) -> int | None:
        return self.installation.id if self.installation else None

    # What a kind of caller always has: a JWT or an installation token its app, an installation
    # token its installation and token. Asked of another caller, they refuse as GitHub does.
    @property
    def app_required(self) -> App:
        return _required(self.app)

    @property
    def installation_required(self) -> Installation:
        return _required(self.installation)

    @property
    def token_required(self) -> Token:
        return _required(self.token)

    def covers(self, repo: Repository) -> bool:
        """An installation token whose installation (and the token's own repository list) holds repo."""
        if self.kind != "installation":
            return False
        inst, token = self.installation_required, self.token_required
        return (
            repo.owner is inst.account
            and (inst.repository_selection == "all" or repo.id in inst.repo_ids)
            and (token.repo_ids is None or repo.id in token.repo_ids)
        )

    def can_read(self, repo: Repository) -> bool:
        """Public repositories are readable by anyone; private ones by the installations holding them."""
        return not repo.private or self.covers(repo)

    def permission(self, name: str) -> str | None:
        if self.token is None:
            return None
        if name == "metadata":
            return "read"
        return self.token.permissions.get(name)


ANONYMOUS = AuthInfo("none")


def _required(value: T | None) -> T:
    if value is None:
        raise ApiError(401, "Requires authentication")
    return value


def classify(header: str | None) -> tuple[str, str | None]:
    """("jwt" | "token" | "none", credential) from an Authorization header."""
    if not header:
        return "none", None
    scheme, _, cred = header.strip().partition(" ")
    cred = cred.strip()
    scheme = scheme.lower()
    if scheme not in ("bearer", "token") or not cred:
        return "token", cred or header
    if scheme == "bearer" and cred.count(".") == 2:
        return "jwt", cred
    return "token", cred


class Authenticator:
    def __init__(self, state: State):
        self.state = state

    # ------------------------------------------------------------------ JWT

    def verify_jwt(self, token: str, now: float | None = None) -> App:
        now = time.time() if now is None else now
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise ApiError(401, JWT_UNDECODABLE) from None
        iss = claims.get("iss")
        app = self._app_for_issuer(iss)
        if app is None:
            raise ApiError(401, JWT_UNDECODABLE if iss is None else JWT_ISSUER)
        try:
            jwt.decode(
                token,
                app.public_key,
                algorithms=["RS256"],
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "verify_aud": False,
                    "verify_iss": False,
                },
            )
        except jwt.PyJWTError:
            raise ApiError(401, JWT_UNDECODABLE) from None
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, (int, float)) or isinstance(exp, bool) or exp <= now:
            raise ApiError(401, JWT_EXPIRED)
        if not isinstance(iat, (int, float)) or isinstance(iat, bool) or iat > now + 60:
            raise ApiError(401, JWT_IAT_FUTURE)
        if exp - iat > 600 or exp > now + 600:
            raise ApiError(401, JWT_TOO_LONG)
        return app

    def _app_for_issuer(self, iss) -> App | None:
        if isinstance(iss, bool):
            return None
        if isinstance(iss, int) or (isinstance(iss, str) and iss.isdigit()):
            return self.state.apps.get(int(iss))
        if isinstance(iss, str):
            for app in self.state.apps.values():
                if app.client_id == iss:
                    return app
        return None

    # ------------------------------------------------------------------ tokens

    def issue_token(self, inst: Installation, permissions: dict[str, str] | None, repo_ids: set[int] | None) -> Token:
        token = Token(
            token=installation_token(),
            installation=inst,
            expires_at=time.time() + TOKEN_LIFETIME,
            permissions=dict(permissions if permissions is not None else inst.permissions),
            repo_ids=repo_ids,
        )
        with self.state.lock:
            self.state.tokens[token.token] = token
        return token

    def revoke_all(self, installation_id: int | None = None) -> int:
        n = 0
        with self.state.lock:
            for token in self.state.tokens.values():
                if not token.revoked and (installation_id is None or token.installation.id == installation_id):
                    token.revoked = True
                    n += 1
        return n

    def authenticate(self, header: str | None) -> AuthInfo:
        kind, cred = classify(header)
        if kind == "none" or cred is None:  # (classify gives a credential to every other kind)
            return ANONYMOUS
        if kind == "jwt":
            return AuthInfo("jwt", app=self.verify_jwt(cred))
        token = self.state.tokens.get(cred or "")
        if token is None or token.revoked or token.expires_at <= time.time():
            raise bad_credentials()
        inst = token.installation
        if inst.deleted:
            raise bad_credentials()
        return AuthInfo("installation", app=inst.app, installation=inst, token=token)


# Which fine-grained permission each operation needs, for installation tokens.
# (name, level); a tuple of alternatives means any one of them is enough
# (GitHub accepts issues or pull_requests for comments and labels on PRs).
_ISSUES_READ = (("issues", "read"), ("pull_requests", "read"))
_ISSUES_WRITE = (("issues", "write"), ("pull_requests", "write"))
PERMISSIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "repos/get": (("metadata", "read"),),
    "repos/update": (("administration", "write"),),
    "repos/get-collaborator-permission-level": (("metadata", "read"),),
    "repos/list-forks": (("metadata", "read"),),
    "repos/create-fork": (("administration", "write"),),
    "repos/get-content": (("contents", "read"),),
    "repos/create-or-update-file-contents": (("contents", "write"),),
    "repos/delete-file": (("contents", "write"),),
    "git/get-ref": (("contents", "read"),),
    "git/list-matching-refs": (("contents", "read"),),
    "git/create-ref": (("contents", "write"),),
    "git/update-ref": (("contents", "write"),),
    "git/delete-ref": (("contents", "write"),),
    "git/create-tree": (("contents", "write"),),
    "git/get-tree": (("contents", "read"),),
    "git/create-commit": (("contents", "write"),),
    "git/get-commit": (("contents", "read"),),
    "git/create-blob": (("contents", "write"),),
    "pulls/list": (("pull_requests", "read"),),
    "pulls/get": (("pull_requests", "read"),),
    "pulls/list-files": (("pull_requests", "read"),),
    "pulls/list-requested-reviewers": (("pull_requests", "read"),),
    "pulls/list-reviews": (("pull_requests", "read"),),
    "pulls/get-review": (("pull_requests", "read"),),
    "pulls/list-review-comments": (("pull_requests", "read"),),
    "pulls/get-review-comment": (("pull_requests", "read"),),
    "pulls/create": (("pull_requests", "write"),),
    "pulls/update": (("pull_requests", "write"),),
    "pulls/request-reviewers": (("pull_requests", "write"),),
    "pulls/remove-requested-reviewers": (("pull_requests", "write"),),
    "pulls/create-review": (("pull_requests", "write"),),
    "pulls/update-review": (("pull_requests", "write"),),
    "pulls/delete-pending-review": (("pull_requests", "write"),),
    "pulls/create-review-comment": (("pull_requests", "write"),),
    "pulls/update-review-comment": (("pull_requests", "write"),),
    "pulls/delete-review-comment": (("pull_requests", "write"),),
    "issues/get": _ISSUES_READ,
    "issues/list-comments": _ISSUES_READ,
    "issues/get-comment": _ISSUES_READ,
    "issues/list-labels-on-issue": _ISSUES_READ,
    "issues/list-labels-for-repo": _ISSUES_READ,
    "issues/get-label": _ISSUES_READ,
    "reactions/list-for-issue-comment": _ISSUES_READ,
    "issues/update": _ISSUES_WRITE,
    "issues/create-comment": _ISSUES_WRITE,
    "issues/update-comment": _ISSUES_WRITE,
    "issues/delete-comment": _ISSUES_WRITE,
    "issues/add-labels": _ISSUES_WRITE,
    "issues/set-labels": _ISSUES_WRITE,
    "issues/remove-all-labels": _ISSUES_WRITE,
    "issues/remove-label": _ISSUES_WRITE,
    "issues/create-label": _ISSUES_WRITE,
    "issues/update-label": _ISSUES_WRITE,
    "issues/delete-label": _ISSUES_WRITE,
    "reactions/create-for-issue-comment": _ISSUES_WRITE,
    "checks/create": (("checks", "write"),),
    "checks/update": (("checks", "write"),),
    "checks/get": (("checks", "read"),),
    "checks/list-for-ref": (("checks", "read"),),
    "orgs/check-membership-for-user": (("members", "read"),),
    "teams/get-membership-for-user-in-org": (("members", "read"),),
}


def accepted_permissions_header(operation_id: str) -> str | None:
    need = PERMISSIONS.get(operation_id)
    if not need:
        return None
    return "; ".join(f"{name}={level}" for name, level in need)


def has_permission(auth: AuthInfo, operation_id: str) -> bool:
    need = PERMISSIONS.get(operation_id)
    if not need or auth.kind != "installation":
        return True
    for name, level in need:
        granted = auth.permission(name)
        if granted == "write" or (granted == "read" and level == "read") or granted == "admin":
            return True
    return False
