"""`/images/{name}/{tag}`: one image as /api/images/{name}/{tag} shows it (its facts,
labels, annotations, layers, the platforms of an index with theirs, referrers, the pull
commands), and the pages behind it: `…/-/layers[?platform=]` and `…/-/platforms`."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response

from api.manage.image_details import PAGE_LAYERS, PAGE_PLATFORMS, PARTS, details
from api.manage.images import visible_repository
from api.web.images import inputs
from api.web.images.common import page
from api.web.images.refusals import not_found, shown
from api.web.session import signed_in
from api.web.templates import gettext

# What the referrers API calls an image's artifact type when it names none (its config's
# media type): on a plain image that is noise, not a fact worth a line.
PLAIN_IMAGE = "application/vnd.oci.image.config.v1+json"


def kinds(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The kinds of referrers, as people call them."""
    _ = gettext(request)
    return {
        "signature": _("Signature"),
        "sbom": _("SBOM"),
        "attestation": _("Attestation"),
        "artifact": _("Artifact"),
    }


async def image(request: Request[Any, Any, Any], name: str, tag: str) -> Response[Any]:
    await signed_in(request)
    services = request.app.state.services
    with shown(request, name, tag):
        _caller, actions = await visible_repository(request, name)
        found = await details(request, services, name, tag)
    return page(
        request,
        "image.html",
        image=found,
        artifact_type=found.artifact_type if found.artifact_type != PLAIN_IMAGE else None,
        kinds=kinds(request),
        may_delete="delete" in actions,
    )


async def part(request: Request[Any, Any, Any], name: str, tag: str, which: str) -> Response[Any]:
    """A page of the image's (or one platform's) layers, or of an index's platforms."""
    await signed_in(request)
    if which not in PARTS:
        raise not_found(request, name, tag)
    services = request.app.state.services
    most = PAGE_LAYERS[1] if which == "layers" else PAGE_PLATFORMS[1]
    limit = inputs.limit(request, 0, most) or None
    cursor = inputs.cursor(request)
    platform = inputs.text(request, "platform") if which == "layers" else None
    with shown(request, name, tag):
        await visible_repository(request, name)
        found = await PARTS[which](services, name, tag, limit, cursor, platform)
    return page(
        request,
        f"{which}.html",
        name=name,
        tag=tag,
        found=found,
        platform=platform,
        limit=limit,
        cursor=cursor,
    )
