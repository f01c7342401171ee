"""The views the projection runner (workers.projector) keeps, by name, and the channel on
which it announces the position they reached (projections.waiter listens there)."""

from __future__ import annotations

from projections import (
    access_tokens,
    blob_links,
    history,
    images,
    login_failures,
    manifests,
    namespaces,
    pulls,
    referrers,
    repositories,
    revoked_tokens,
    storage,
    tags,
    users,
)
from projections.view import View

VIEWS: dict[str, View] = {
    v.name: v  # type: ignore[misc]
    for v in (
        repositories,
        manifests,
        tags,
        blob_links,
        referrers,
        images,
        storage,
        users,
        namespaces,
        access_tokens,
        revoked_tokens,
        login_failures,
        pulls,
        history,
    )
}
CHANNEL = "cyp_views"
