"""GitHub-shaped error responses.

GitHub answers errors with ``{"message", "documentation_url", "status"}``
(``status`` is the code as a string) and, for validation failures (422), an
``errors`` list of ``{"resource", "field", "code"}`` or ``{"message"}``.
Handlers raise ``ApiError``; the server turns it into that body.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

DOCS = "https://docs.github.com/rest"


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str | None = None,
        *,
        errors: list | None = None,
        docs: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        self.status = status
        self.message = message or HTTPStatus(status).phrase
        self.errors = errors
        self.docs = docs
        self.headers = headers or {}
        super().__init__(f"{status} {self.message}")

    def body(self, default_docs: str = DOCS) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message}
        if self.errors is not None:
            out["errors"] = self.errors
        out["documentation_url"] = self.docs or default_docs
        out["status"] = str(self.status)
        return out


def not_found() -> ApiError:
    return ApiError(404, "Not Found")


def validation(errors: list[dict | str] | None = None, message: str = "Validation Failed") -> ApiError:
    return ApiError(422, message, errors=errors if errors is not None else [])


def missing_field(resource: str, field: str) -> ApiError:
    return validation([{"resource": resource, "code": "missing_field", "field": field}])


def invalid_field(resource: str, field: str, code: str = "invalid") -> ApiError:
    return validation([{"resource": resource, "code": code, "field": field}])


def custom(resource: str, field: str, message: str) -> ApiError:
    return validation([{"resource": resource, "code": "custom", "field": field, "message": message}])


def forbidden_integration() -> ApiError:
    return ApiError(403, "Resource not accessible by integration")


def bad_credentials() -> ApiError:
    return ApiError(401, "Bad credentials")
