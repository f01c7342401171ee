"""What an event says, in the reader's language: "moved tag app:prod from sha256:ab12… to
sha256:cd34…". A sentence is a translated message whose `{placeholders}` become parts —
text, or code (a name, a tag, a digest) — which the template shows, escaped, each in its
element: translations may put them in any order. An event type without a sentence of its
own (one added later) still gets one: the generic sentence naming its type."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple

from api.web import i18n
from domain.caller import ANONYMOUS_ACTOR, CLI_ACTOR, SYSTEM_ACTOR
from domain.manifests import INDEX_TYPES
from projections.history import HistoryRow

DIGEST_SHOWN = 12  # hex digits of a digest in a sentence (the whole one is its title)
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
# An image's manifest names its config's type as its artifact type (as the referrers API
# reports it): those are images, not artifacts.
IMAGE_CONFIGS = frozenset(
    {"application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"}
)


class Part(NamedTuple):
    text: str
    code: bool = False  # a name, tag or digest: shown as code
    title: str | None = None  # the whole value, when `text` is shortened


def code(value: Any) -> Part:
    return Part(str(value), code=True)


def digest(value: Any) -> Part:
    text = str(value or "")
    algorithm, colon, encoded = text.partition(":")
    if colon and len(encoded) > DIGEST_SHOWN:
        return Part(f"{algorithm}:{encoded[:DIGEST_SHOWN]}…", code=True, title=text)
    return Part(text or "?", code=True)


def compose(message: str, **values: Part | str) -> list[Part]:
    """`message` (translated) with each `{name}` replaced by its part; adjacent text joins."""
    parts: list[Part] = []
    for i, piece in enumerate(_PLACEHOLDER.split(message)):
        value = values.get(piece, "{" + piece + "}") if i % 2 else piece
        part = value if isinstance(value, Part) else Part(value)
        if not part.text:
            continue
        if parts and not part.code and not parts[-1].code:
            parts[-1] = Part(parts[-1].text + part.text)
        else:
            parts.append(part)
    return parts


class Writer:
    """Sentences in one language: `_` its messages, `language` for sizes."""

    def __init__(self, _: Callable[[str], str], language: str) -> None:
        self._ = _
        self.language = language

    def size(self, value: Any) -> str:
        return i18n.size(value, self.language) if isinstance(value, int) else "?"

    def role(self, role: Any) -> str:
        _ = self._
        names = {
            "admin": _("system administrator"),
            "user": _("user"),
            "owner": _("owner"),
            "maintainer": _("maintainer"),
            "developer": _("developer"),
            "reader": _("reader"),
        }
        return names.get(str(role), str(role))

    def method(self, method: Any) -> str:
        _ = self._
        names = {"web": _("web"), "api": "API"}  # (docker: its name in every language)
        return names.get(str(method), str(method))

    def reason(self, reason: Any) -> str:
        _ = self._
        names = {
            "invalid credentials": _("wrong username or password"),
            "user disabled": _("the user is disabled"),
            "throttled": _("too many failed attempts"),
        }
        return names.get(str(reason), str(reason))

    def actor(self, actor: str) -> str:
        """An actor's name for people (the names no user may take say what they are)."""
        _ = self._
        names = {
            ANONYMOUS_ACTOR: _("anonymous"),
            SYSTEM_ACTOR: _("the registry"),
            CLI_ACTOR: _("command line"),
        }
        return names.get(actor, actor)

    def sentence(self, row: HistoryRow) -> list[Part]:
        """What `row`'s event did, as a sentence."""
        _ = self._
        d = row.details
        repository = code(row.repository or "?")
        image = code(f"{row.repository}:{row.tag}")
        kind = row.type
        if kind == "repository.created":
            return compose(_("created repository {repository}"), repository=repository)
        if kind == "repository.deleted":
            return compose(_("deleted repository {repository}"), repository=repository)
        if kind == "blob.linked":
            return compose(
                _("added blob {digest} ({size}) to {repository}"),
                digest=digest(row.digest),
                size=self.size(d.get("size")),
                repository=repository,
            )
        if kind == "blob.unlinked":
            return compose(
                _("removed blob {digest} from {repository}"),
                digest=digest(row.digest),
                repository=repository,
            )
        if kind == "manifest.pushed":
            return self._pushed(row, repository)
        if kind == "manifest.deleted":
            return compose(
                _("deleted manifest {digest} from {repository}"),
                digest=digest(row.digest),
                repository=repository,
            )
        if kind == "tag.moved":
            if not d.get("from_digest"):
                return compose(
                    _("created tag {image} at {to_digest}"),
                    image=image,
                    to_digest=digest(d.get("to_digest", row.digest)),
                )
            return compose(
                _("moved tag {image} from {from_digest} to {to_digest}"),
                image=image,
                from_digest=digest(d.get("from_digest")),
                to_digest=digest(d.get("to_digest", row.digest)),
            )
        if kind == "tag.deleted":
            return compose(
                _("deleted tag {image} (it was {from_digest})"),
                image=image,
                from_digest=digest(d.get("from_digest")),
            )
        if kind.startswith(("user.", "login.", "token.")):
            return self._identity(row)
        if kind.startswith("namespace."):
            return self._namespace(row)
        if kind.startswith("access_token."):
            return self._access_token(row)
        if kind == "pulls.counted":
            counts = [*dict(d.get("tags") or {}).values(), *dict(d.get("digests") or {}).values()]
            total = sum(n for n in counts if isinstance(n, int))
            return compose(
                _("counted pulls of {repository}: {count}"),
                repository=repository,
                count=i18n.number(total, self.language),
            )
        if row.repository:
            return compose(
                _("recorded a {type} event of {repository}"),
                type=code(kind),
                repository=repository,
            )
        return compose(_("recorded a {type} event"), type=code(kind))

    def _pushed(self, row: HistoryRow, repository: Part) -> list[Part]:
        _ = self._
        d = row.details
        media_type = str(d.get("media_type") or "")
        values = {"digest": digest(row.digest), "size": self.size(d.get("size"))}
        if d.get("artifact_type") and d["artifact_type"] not in IMAGE_CONFIGS:
            return compose(
                _("pushed artifact {digest} ({size}, {artifact_type}) to {repository}"),
                artifact_type=code(d["artifact_type"]),
                repository=repository,
                **values,
            )
        if media_type in INDEX_TYPES:
            return compose(
                _("pushed image index {digest} ({size}) to {repository}"),
                repository=repository,
                **values,
            )
        return compose(
            _("pushed manifest {digest} ({size}) to {repository}"),
            repository=repository,
            **values,
        )

    def _identity(self, row: HistoryRow) -> list[Part]:
        _ = self._
        d = row.details
        user = code(d.get("username", "?"))
        kind = row.type
        if kind == "user.registered":
            return compose(
                _("registered user {username} as {role}"),
                username=user,
                role=self.role(d.get("role")),
            )
        if kind == "user.password_changed":
            return compose(_("changed the password of {username}"), username=user)
        if kind == "user.role_changed":
            return compose(
                _("changed the role of {username} from {from_role} to {role}"),
                username=user,
                from_role=self.role(d.get("from_role")),
                role=self.role(d.get("role")),
            )
        if kind == "user.disabled":
            return compose(_("disabled user {username}"), username=user)
        if kind == "user.enabled":
            return compose(_("enabled user {username}"), username=user)
        if kind == "user.unlocked":
            if d.get("address"):
                return compose(
                    _("lifted the sign-in lock of {username} from {address}"),
                    username=user,
                    address=code(d["address"]),
                )
            return compose(_("lifted the sign-in lock of {username}"), username=user)
        if kind == "login.succeeded":
            if d.get("credential"):
                return compose(
                    _("signed in ({method}) with the access token {credential}"),
                    method=self.method(d.get("method")),
                    credential=code(d["credential"]),
                )
            return compose(_("signed in ({method})"), method=self.method(d.get("method")))
        if kind == "login.failed":
            return compose(
                _("sign-in as {username} failed ({method}): {reason}"),
                username=user,
                method=self.method(d.get("method")),
                reason=self.reason(d.get("reason")),
            )
        if kind == "token.revoked":
            if d.get("subject") == row.actor:
                return compose(_("signed out"))
            return compose(_("ended a session of {username}"), username=code(d.get("subject", "?")))
        return compose(_("recorded a {type} event"), type=code(kind))

    def _namespace(self, row: HistoryRow) -> list[Part]:
        _ = self._
        d = row.details
        namespace = code(row.namespace or d.get("name", "?"))
        user = code(d.get("username", "?"))
        kind = row.type
        if kind == "namespace.created":
            message = (
                _("created the public namespace {namespace}")
                if d.get("public")
                else _("created the private namespace {namespace}")
            )
            return compose(message, namespace=namespace)
        if kind == "namespace.visibility_changed":
            message = (
                _("made namespace {namespace} public")
                if d.get("public")
                else _("made namespace {namespace} private")
            )
            return compose(message, namespace=namespace)
        if kind == "namespace.member_added":
            return compose(
                _("added {username} to namespace {namespace} as {role}"),
                username=user,
                namespace=namespace,
                role=self.role(d.get("role")),
            )
        if kind == "namespace.member_changed":
            return compose(
                _(
                    "changed the role of {username} in namespace {namespace}"
                    " from {from_role} to {role}"
                ),
                username=user,
                namespace=namespace,
                from_role=self.role(d.get("from_role")),
                role=self.role(d.get("role")),
            )
        if kind == "namespace.member_removed":
            return compose(
                _("removed {username} from namespace {namespace}"),
                username=user,
                namespace=namespace,
            )
        if kind == "namespace.deleted":
            return compose(_("deleted namespace {namespace}"), namespace=namespace)
        return compose(_("recorded a {type} event"), type=code(kind))

    def _access_token(self, row: HistoryRow) -> list[Part]:
        _ = self._
        d = row.details
        principal = code(d.get("principal", "?"))
        robot = d.get("token_type") == "robot"
        if row.type == "access_token.issued":
            if robot:
                return compose(
                    _("created the robot account {robot} in namespace {namespace}"),
                    robot=principal,
                    namespace=code(row.namespace or d.get("namespace", "?")),
                )
            return compose(
                _("issued the personal access token {name} of {username}"),
                name=code(d.get("name", "?")),
                username=principal,
            )
        if row.type == "access_token.revoked":
            if robot:
                return compose(_("revoked the robot account {robot}"), robot=principal)
            return compose(
                _("revoked the personal access token {token} of {username}"),
                token=code(d.get("token_id", "?")),
                username=principal,
            )
        return compose(_("recorded a {type} event"), type=code(row.type))
