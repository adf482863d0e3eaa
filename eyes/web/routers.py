"""How the site's routers are made, so that every route gets the same checks in the same order:
an id in its path is checked first (`ids_in_range`: 404 before any query), then the CSRF token
of a state-changing request (`check_csrf`), and the API's routes document the error answers they give."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from eyes.web.deps import check_csrf, ids_in_range
from eyes.web.schemas import ErrorResponse


def api_router(prefix: str, errors: tuple[int, ...], **options: Any) -> APIRouter:
    """A router of the JSON API under `prefix`; `errors` are the status codes its routes may
    answer with an ErrorResponse, for the OpenAPI document."""
    return APIRouter(
        prefix=prefix,
        dependencies=[Depends(ids_in_range), Depends(check_csrf)],
        responses={code: {"model": ErrorResponse} for code in errors},
        **options,
    )


def page_router() -> APIRouter:
    """A router of HTML pages or image files, left out of the OpenAPI document."""
    return APIRouter(include_in_schema=False, dependencies=[Depends(ids_in_range), Depends(check_csrf)])
