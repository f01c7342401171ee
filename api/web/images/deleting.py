"""Deleting a tag or a repository: a confirmation page that says what goes, then the form
it holds (POST, CSRF checked), which runs the /api deletes' own code — so a user without
the delete permission is refused (403) whatever they send, and nothing is deleted."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response

from api.manage.image_details import image_row
from api.manage.images import remove_tag, tag_users, visible_repository
from api.manage.repositories import remove_repository
from api.web.images.common import page
from api.web.images.paths import with_query
from api.web.images.refusals import not_found, refusal, shown
from api.web.session import checked_form, signed_in
from api.web.templates import redirect
from domain.errors import RegistryError
from projections import repositories


async def _may_delete(request: Request[Any, Any, Any], name: str, tag: str = "") -> None:
    with shown(request, name, tag):
        _caller, actions = await visible_repository(request, name)
    if "delete" not in actions:
        raise refusal(request, RegistryError("DENIED"), name, tag)


async def confirm_tag(request: Request[Any, Any, Any], name: str, tag: str) -> Response[Any]:
    await signed_in(request)
    await _may_delete(request, name, tag)
    services = request.app.state.services
    with shown(request, name, tag):
        row = await image_row(services, name, tag)
    kept = await tag_users(services, name, tag, row.digest)
    return page(request, "delete-tag.html", name=name, tag=tag, row=row, kept=len(kept))


async def confirm_repository(request: Request[Any, Any, Any], name: str) -> Response[Any]:
    await signed_in(request)
    await _may_delete(request, name)
    found = await request.app.state.services.query(repositories.get, name)
    if found is None:
        raise not_found(request, name)
    return page(request, "delete-repository.html", name=name, repository=found)


async def delete_tag(request: Request[Any, Any, Any], name: str, tag: str) -> Response[Any]:
    await checked_form(request)
    with shown(request, name, tag):
        await remove_tag(request, name, tag)
    return redirect(with_query("/images", deleted=f"{name}:{tag}"))


async def delete_repository(request: Request[Any, Any, Any], name: str) -> Response[Any]:
    await checked_form(request)
    with shown(request, name):
        await remove_repository(request, name)
    return redirect(with_query("/repositories", deleted=name))
