"""REST handlers, one module per area. Importing the package registers them
(``api.HANDLERS``, keyed by the OpenAPI ``operationId``)."""

from . import apps, checks, git, issues, pulls, repos  # noqa: F401
