"""One body shape for every error the web app answers in JSON (GitHub's own shape):

    {"message": "what went wrong, for a person", "errors": [{"field": "...", "problem": "..."}]}

`errors` lists the fields at fault, and is empty when the request as a whole was refused.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException


def error_response(status: int, message: str, errors: list[dict] | None = None, headers=None) -> JSONResponse:
    return JSONResponse({"message": message, "errors": errors or []}, status_code=status, headers=headers)


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    return error_response(exc.status_code, str(exc.detail), headers=exc.headers)


async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {"field": ".".join(str(part) for part in error["loc"][1:]) or str(error["loc"][0]), "problem": error["msg"]}
        for error in exc.errors()
    ]
    return error_response(422, "invalid request", errors)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Starlette logs the traceback; the client learns nothing about the internals.
    return error_response(500, "internal error; the server's log has the details")


def install(api: FastAPI) -> None:
    # The decorator form: add_exception_handler's type takes only handlers of any Exception.
    api.exception_handler(HTTPException)(_http_error)
    api.exception_handler(RequestValidationError)(_invalid_request)
    api.add_exception_handler(Exception, _unexpected)
