"""Registering and changing users, recording sign-ins, revoking /api tokens."""

from __future__ import annotations

from typing import Any

from domain.caller import Caller
from domain.commands.base import Commands
from domain.errors import RegistryError
from domain.identity import Login, RevokedToken, User, check_role, check_username, is_valid_username
from domain.namespaces import Namespace
from domain.passwords import hash_password


class IdentityCommands(Commands):
    """The identity commands of the `Registry` application (mixed into it).

    Each returns the notification position of the last stored event, or None when nothing
    had to change (disabling a disabled user, giving a user the role they have).
    """

    def _existing_user(self, username: str) -> User:
        user = self._get(User, username)
        if user is None:
            raise RegistryError("USER_UNKNOWN", detail={"username": username})
        return user

    def find_user(self, username: str) -> User | None:
        """The user as the write side knows it (current, unlike the views)."""
        return self._get(User, username) if is_valid_username(username) else None

    def register_user(self, username: str, password: str, role: str, caller: Caller) -> int | None:
        check_username(username)
        check_role(role)
        password_hash = hash_password(password)  # once, outside the conflict retries

        def body() -> list[Any]:
            # The namespace first: one registered together with its user by a racing replica
            # is then seen with that user, and reported as USER_EXISTS.
            existing = self._get(Namespace, username)
            namespace_taken = existing is not None and existing.alive
            if self._get(User, username) is not None:
                raise RegistryError("USER_EXISTS", detail={"username": username})
            if namespace_taken:
                raise RegistryError("NAMESPACE_EXISTS", detail={"namespace": username})
            # The user and their personal namespace in one transaction, from the namespace as
            # read before the user: a replica registering the same name meanwhile makes this
            # save conflict, and the retry finds the user.
            personal = self._reopened(existing, username, username, True, False, caller)
            return [User.register(username, role, password_hash, *caller), personal]

        return self._command(f"user:{username}", body)

    def change_password(self, username: str, password: str, caller: Caller) -> int | None:
        password_hash = hash_password(password)

        def body() -> list[Any]:
            user = self._existing_user(username)
            user.change_password(password_hash, *caller)
            return [user]

        return self._command(f"user:{username}", body)

    def change_role(self, username: str, role: str, caller: Caller) -> int | None:
        check_role(role)

        def body() -> list[Any]:
            user = self._existing_user(username)
            if user.role == role:
                return []
            user.change_role(role, *caller)
            return [user]

        return self._command(f"user:{username}", body)

    def disable_user(self, username: str, caller: Caller) -> int | None:
        def body() -> list[Any]:
            user = self._existing_user(username)
            if user.disabled:
                return []
            user.disable(*caller)
            return [user]

        return self._command(f"user:{username}", body)

    def enable_user(self, username: str, caller: Caller) -> int | None:
        def body() -> list[Any]:
            user = self._existing_user(username)
            if not user.disabled:
                return []
            user.enable(*caller)
            return [user]

        return self._command(f"user:{username}", body)

    def revoke_token(self, jti: str, subject: str, expires: int, caller: Caller) -> int | None:
        """Revoke a token by its id (None: it already was)."""

        def body() -> list[Any]:
            if self._get(RevokedToken, jti) is not None:
                return []
            return [RevokedToken.revoke(jti, subject, int(expires), *caller)]

        return self._command(f"token:{jti}", body)

    def unlock_user(self, username: str, address: str, caller: Caller) -> int | None:
        """Lift the sign-in throttle of `username` (and of the client `address`, if not
        empty): their earlier failures stop counting. Always recorded (an admin action)."""

        def body() -> list[Any]:
            user = self._existing_user(username)
            user.unlock(address, *caller)
            return [user]

        return self._command(f"user:{username}", body)

    def record_login(
        self,
        username: str,
        method: str,
        client: str,
        user_agent: str,
        failure: str | None = None,
        credential: str = "",
    ) -> int | None:
        """Record a sign-in attempt (`failure`: why it was refused; None: it succeeded;
        `credential`: the access token or robot used, "" for a password)."""
        attempt = Login.attempt(username, method, client, user_agent, failure, credential)
        recordings = self.save(attempt)
        return recordings[-1].notification.id if recordings else None
