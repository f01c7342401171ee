"""Issuing and revoking personal access tokens and robots."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from domain.access_tokens import ROBOT, AccessToken, secret_hash
from domain.caller import Caller
from domain.commands.base import Commands
from domain.errors import RegistryError


class AccessTokenCommands(Commands):
    """Issuing and revoking tokens and robots (mixed into the `Registry`). Whether the caller
    may (their own tokens; robots of a namespace they own) is the API's check."""

    def issue_access_token(
        self,
        token_id: str,
        token_type: str,
        principal: str,
        namespace: str,
        name: str,
        description: str,
        scopes: Mapping[str, Iterable[str]],
        expires_at: int,
        secret: str,
        caller: Caller,
    ) -> int | None:
        fields = dict(
            token_id=token_id,
            token_type=token_type,
            principal=principal,
            namespace=namespace,
            name=name,
            description=description,
            scopes={ns: list(actions) for ns, actions in scopes.items()},
            expires_at=int(expires_at),
            secret_hash=secret_hash(secret),
            actor=caller.actor,
            client=caller.client,
        )

        def body() -> list[Any]:
            found = self._get(AccessToken, token_id)
            if found is not None and found.revoked and found.token_type == ROBOT:
                found.trigger_event(AccessToken.Reissued, **fields)
                return [found]
            if found is not None:
                raise RegistryError("TOKEN_EXISTS", detail={"name": token_id})
            token = AccessToken._create(
                AccessToken.Issued, id=AccessToken.create_id(token_id), **fields
            )
            return [token]

        return self._command(f"access_token:{token_id}", body)

    def revoke_access_token(self, token_id: str, caller: Caller) -> int | None:
        """Revoke (None: it already was); TOKEN_UNKNOWN if there is no such token."""

        def body() -> list[Any]:
            token = self._get(AccessToken, token_id)
            if token is None:
                raise RegistryError("TOKEN_UNKNOWN", detail={"id": token_id})
            if token.revoked:
                return []
            token.revoke(*caller)
            return [token]

        return self._command(f"access_token:{token_id}", body)
