"""Which proxies may tell us who the client is (`CYP_TRUSTED_PROXIES`).

Nobody by default: the client is the peer of the connection, and `X-Forwarded-For` is
ignored — anyone can send it, and a made-up one per request would beat the per-address
sign-in throttle and fake the `client` of the history. Only when the peer is one of the
trusted proxies (IPs or CIDRs) is `X-Forwarded-For` read, from the right: each trusted hop
is skipped, and the first untrusted one is the client (entries further left were written
by that client and prove nothing). A malformed entry ends the walk at the hop that
reported it. `X-Forwarded-Proto` of a trusted peer gives the scheme clients use (the token
realm), unless `CYP_PUBLIC_URL` says it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(text: str) -> str | None:
    """The IP address `text` names (a bare IP; `[v6]` or `v4:port` too), normalised."""
    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port (a bare v6 has several colons)
        text = text.partition(":")[0]
    try:
        found = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(found, ipaddress.IPv6Address) and found.ipv4_mapped is not None:
        found = found.ipv4_mapped
    return str(found)


class TrustedProxies:
    def __init__(self, networks: Iterable[Network] = ()) -> None:
        self.networks = tuple(networks)

    @classmethod
    def parse(cls, text: str) -> TrustedProxies:
        """From `CYP_TRUSTED_PROXIES` (comma-separated IPs and CIDRs); ValueError naming a
        malformed entry."""
        networks = []
        for part in (text or "").split(","):
            part = part.strip()
            if not part:
                continue
            try:
                networks.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(f"not an IP address or CIDR: {part!r}") from None
        return cls(networks)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, address: str) -> bool:
        found = _address(address) if address else None
        if found is None:
            return False
        ip = ipaddress.ip_address(found)
        return any(ip.version == n.version and ip in n for n in self.networks)

    def client(self, peer: str, forwarded_for: Iterable[str]) -> str:
        """The client of a request from `peer` carrying these `X-Forwarded-For` headers."""
        if not self.trusts(peer):
            return peer
        hops = [hop for header in forwarded_for for hop in header.split(",") if hop.strip()]
        client = peer
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:
                return client  # garbage: the last hop we can vouch for
            client = address
            if not self.trusts(address):
                return address
        return client

    def scheme(self, peer: str, forwarded_proto: str | None) -> str | None:
        """The scheme a trusted proxy says the client used (None: not told, or not trusted)."""
        if not forwarded_proto or not self.trusts(peer):
            return None
        proto = forwarded_proto.split(",")[-1].strip().lower()
        return proto if proto in ("http", "https") else None
