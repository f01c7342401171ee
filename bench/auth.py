"""What authentication costs (issue 3): the registry is zero trust, so every /v2 request
carries a token and every client signs in at /token first.

    .venv/bin/python -m bench.auth [--seconds S] [--connections N] [--markdown FILE]

On a fresh `cyp-registry serve` (Postgres on 127.0.0.1:5432, NATS on 127.0.0.1:4222) with one
small image pushed, it measures:

1. manifest GETs by tag with a token (wrk, or the Python load client): the normal path, where a
   token's signature is checked once and then found in the verified-token cache; and, in the
   same run, CNCF Distribution 2.8.2 serving the same request with no authentication at all
   (when Debian's `docker-registry` is installed) — with a token vs without;
2. the guard itself, in process: the per-request cost with a cached token (a dictionary
   lookup and a scope check) and the cost of verifying a token seen for the first time
   (ES256 signature, claims), in microseconds;
3. `/token` sign-ins per second: with a password this process verified lately (HMAC cache),
   with a personal access token (SHA-256), and the latency of the first sign-in with a
   password (argon2id, slow on purpose).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from api.auth.jwts import TokenCache, Tokens
from api.auth.signing_keys import KeyRing
from bench import servers, workload
from bench.workload import ADMIN

MANIFEST = "/v2/bench/auth/manifests/v1"


def _push(url: str) -> None:
    c = workload.Client(url)
    try:
        workload.push_image(c, workload.make_image("bench/auth", "v1", 7))
    finally:
        c.close()


def _load(url: str, connections: int, seconds: float, wrk: str | None) -> workload.Load:
    headers = workload.auth_headers(url + MANIFEST)
    if wrk:
        return workload.run_wrk(wrk, url + MANIFEST, connections, seconds, headers=headers)
    return workload.run_pyload(url + MANIFEST, connections, seconds, headers=headers)


def _per_call_us(action, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        action()
    return (time.perf_counter() - t0) / n * 1e6


def guard_costs(folder: Path) -> dict[str, float]:
    """Microseconds per request for the guard: a cached token, a token seen first."""
    tokens = Tokens(KeyRing(folder / "keys").load(), "cyp-registry", "cyp-registry", 300)
    access = [{"type": "repository", "name": "bench/auth", "actions": ["pull"]}]
    token, _ = tokens.issue("admin", access)
    cache = TokenCache(tokens)
    cache.grant(token)
    wanted = ("pull",)
    cached = _per_call_us(
        lambda: cache.grant(token).allows("repository", "bench/auth", wanted), 200_000
    )
    fresh = [tokens.issue("admin", access)[0] for _ in range(2000)]
    it = iter(fresh)
    first = _per_call_us(lambda: tokens.verify(next(it)), len(fresh))
    return {"cached token (µs)": cached, "first use of a token (µs)": first}


def sign_ins(url: str, credentials: tuple[str, str], seconds: float, threads: int = 8) -> float:
    """/token sign-ins per second with these credentials (Basic), `threads` clients."""
    deadline = time.monotonic() + seconds
    scope = {"service": "cyp-registry", "scope": "repository:bench/auth:pull"}

    def client() -> int:
        done = 0
        with httpx.Client(base_url=url, auth=credentials, timeout=30) as http:
            while time.monotonic() < deadline:
                answer = http.get("/token", params=scope)
                if answer.status_code != 200:
                    raise RuntimeError(f"/token: {answer.status_code} {answer.text[:200]}")
                done += 1
        return done

    t0 = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        total = sum(pool.map(lambda _: client(), range(threads)))
    return total / (time.monotonic() - t0)


def _user_with_token(url: str) -> tuple[tuple[str, str], float]:
    """A new user (its first sign-in's seconds: argon2id) and a personal access token."""
    api = httpx.post(f"{url}/api/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]})
    session = {"Authorization": f"Bearer {api.json()['data']['token']}"}
    password = "bench-user-password"
    body = {"username": "benchuser", "password": password, "role": "admin"}
    httpx.post(f"{url}/api/users", json=body, headers=session).raise_for_status()
    t0 = time.perf_counter()
    httpx.get(f"{url}/token", auth=("benchuser", password)).raise_for_status()
    first = time.perf_counter() - t0
    login = httpx.post(
        f"{url}/api/auth/login", json={"username": "benchuser", "password": password}
    )
    user_session = {"Authorization": f"Bearer {login.json()['data']['token']}"}
    scopes = [{"namespace": "*", "actions": ["pull"]}]
    issued = httpx.post(
        f"{url}/api/tokens", json={"name": "bench", "scopes": scopes}, headers=user_session
    )
    issued.raise_for_status()
    return ("benchuser", issued.json()["data"]["secret"]), first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    wrk = workload.find_wrk(False)
    lines = [
        "| measure | CYP Registry | Distribution 2.8.2 (no auth) | ratio |",
        "|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory(prefix="cyp-bench-auth-") as tmp:
        root = Path(tmp)
        with servers.Ours(root / "cyp") as ours:
            _push(ours.url)
            ours_load = _load(ours.url, args.connections, args.seconds, wrk)
            pat, first_sign_in = _user_with_token(ours.url)
            password_rate = sign_ins(ours.url, ADMIN, args.seconds)
            pat_rate = sign_ins(ours.url, pat, args.seconds)
        dist_load = None
        if servers.Distribution.available():
            with servers.Distribution(root / "dist") as dist:
                _push(dist.url)
                dist_load = _load(dist.url, args.connections, args.seconds, wrk)
        costs = guard_costs(root / "guard")
    ratio = f"{ours_load.rps / dist_load.rps:.2f}x" if dist_load else "—"
    theirs = f"{dist_load.rps:,.0f}" if dist_load else "not installed"
    lines.append(
        f"| manifest GET req/s ({ours_load.tool}, {args.connections} conn.) | "
        f"{ours_load.rps:,.0f} with a token | {theirs} without | {ratio} |"
    )
    for what, us in costs.items():
        lines.append(f"| guard per request, {what} | {us:,.1f} µs | — | — |")
    lines.append(f"| /token sign-ins/s, password verified lately | {password_rate:,.0f} | — | — |")
    lines.append(f"| /token sign-ins/s, personal access token | {pat_rate:,.0f} | — | — |")
    lines.append(
        f"| first sign-in with a password (argon2id) | {first_sign_in * 1000:,.0f} ms | — | — |"
    )
    lines.append("")
    lines.append(
        f"Median manifest GET latency {ours_load.p50_ms:.1f} ms with a token"
        + (f", {dist_load.p50_ms:.1f} ms without (Distribution)" if dist_load else "")
        + f"; errors {ours_load.errors}."
    )
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
