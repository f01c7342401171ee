"""Creating and deleting namespaces, their visibility and members."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from domain.caller import Caller
from domain.commands.base import Commands
from domain.errors import RegistryError
from domain.namespaces import Namespace, check_member_role, check_namespace, is_valid_namespace


class NamespaceCommands(Commands):
    """The namespace commands of the `Registry` application (mixed into it). Each returns
    the notification position of its last event, or None when nothing had to change."""

    def _namespace(self, name: str) -> Namespace:
        found = self._get(Namespace, name) if is_valid_namespace(name) else None
        if found is None or not found.alive:
            raise RegistryError("NAMESPACE_UNKNOWN", detail={"namespace": name})
        return found

    def create_namespace(
        self, name: str, owner: str, public: bool, caller: Caller, personal: bool = False
    ) -> int | None:
        check_namespace(name)

        def body() -> list[Any]:
            taken = not personal and self._user_exists(name)
            opened = None if taken else self._opened(name, owner, personal, public, caller)
            if opened is None:
                raise RegistryError("NAMESPACE_EXISTS", detail={"namespace": name})
            return [opened]

        return self._command(f"namespace:{name}", body)

    def delete_namespace(self, name: str, robots: Iterable[str], caller: Caller) -> int | None:
        """Delete an organisation namespace the views show empty, revoking its robots (as
        listed by the views) in the same transaction, so none outlives it."""
        robots = list(robots)

        def body() -> list[Any]:
            found = self._namespace(name)
            if found.personal:
                raise RegistryError(
                    "INVALID_INPUT", "a personal namespace goes with its user", status=409
                )
            found.delete(*caller)
            return [found, *self._revoked(robots, caller)]

        return self._command(f"namespace:{name}", body)

    def set_namespace_public(self, name: str, public: bool, caller: Caller) -> int | None:
        def body() -> list[Any]:
            found = self._namespace(name)
            return [found] if found.set_public(public, *caller) else []

        return self._command(f"namespace:{name}", body)

    def set_member(self, name: str, username: str, role: str, caller: Caller) -> int | None:
        check_member_role(role)

        def body() -> list[Any]:
            found = self._namespace(name)
            if username not in found.members and not self._user_exists(username):
                raise RegistryError("USER_UNKNOWN", detail={"username": username})
            return [found] if found.set_member(username, role, *caller) else []

        return self._command(f"namespace:{name}", body)

    def remove_member(self, name: str, username: str, caller: Caller) -> int | None:
        def body() -> list[Any]:
            found = self._namespace(name)
            found.remove_member(username, *caller)
            return [found]

        return self._command(f"namespace:{name}", body)
