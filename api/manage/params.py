"""Query parameters the /api listings share: page size, cursor, order, namespace filter,
and the rule for any free text (Postgres text cannot hold NUL: text with one is refused)."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar.params import Parameter

TEXT = r"^[^\x00]*$"
Limit = Annotated[int, Parameter(ge=1, le=500, description="rows per page (default 50)")]
Cursor = Annotated[
    str | None,
    Parameter(
        max_length=4096, pattern=TEXT, description="`next_cursor` of the previous page, as is"
    ),
]
Order = Annotated[
    Literal["asc", "desc"] | None,
    Parameter(description="default: asc for name, desc for updated and size"),
]
Namespace = Annotated[
    str | None,
    Parameter(max_length=255, pattern=TEXT, description="only what belongs to this namespace"),
]
