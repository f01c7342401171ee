"""Brute force: the pure rule (`domain.throttle`) and, on a real registry, repeated failed
sign-ins on /token per username and per client address get 429 with Retry-After before any
password check, are recorded (reason "throttled", no secrets), and `user unlock` lifts them.

Client addresses other than 127.0.0.1 are other loopback addresses the test binds its side of
the connection to (127.0.0.0/8 is all loopback on Linux)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.proxies import TrustedProxies
from domain.throttle import USER_FACTOR, decide, retry_after, retry_after_header
from tests.auth import ADMIN
from tests.support import ROOT, RegistryProcess, as_url, wait_until

BOB, BOB_PASSWORD = "bob", "bob-secret-pw-1"
CAROL, CAROL_PASSWORD = "carol", "carol-secret-pw-1"
WRONG = "not-the-password-9"
LIMIT, WINDOW = 5, 60


# -- the rule ----------------------------------------------------------------------------------
def test_rule_examples() -> None:
    assert retry_after([], 100, 5, 60) is None
    assert retry_after([90, 91, 92, 93], 100, 5, 60) is None
    assert retry_after([90, 91, 92, 93, 94], 100, 5, 60) == 50  # until 90 leaves the window
    assert retry_after([10, 20, 90, 91, 92, 93, 94], 100, 5, 60) == 50  # old ones do not count
    assert retry_after([40, 90, 91, 92, 93], 100, 5, 60) is None  # 40 is exactly 60 s old
    assert retry_after([80, 90, 91, 92, 93, 94], 100, 5, 60) == 50  # the 5th most recent
    assert retry_after([90] * 10, 100, 0, 60) is None  # limit 0: off
    assert retry_after([99, 130], 100, 1, 60) == 60  # a clock ahead: never beyond the window
    assert retry_after_header(0.2) == "1" and retry_after_header(50) == "50"
    assert retry_after_header(49.01) == "50"


_times = st.lists(st.integers(min_value=0, max_value=1000), max_size=30)


@given(
    _times,
    st.integers(min_value=0, max_value=1000),
    st.integers(min_value=1, max_value=10),
    st.integers(min_value=1, max_value=500),
)
def test_rule_properties(failures: list[int], now: int, limit: int, window: int) -> None:
    failures = [t for t in failures if t <= now]  # a clock ahead: see the examples
    wait = retry_after(failures, now, limit, window)
    counted = [t for t in failures if t > now - window]
    assert (wait is None) == (len(counted) < limit)
    assert retry_after(list(reversed(failures)), now, limit, window) == wait  # order-free
    if wait is not None:
        assert 0 < wait <= window
        # refused until the wait is over, allowed from then on (without new failures)
        assert retry_after(failures, now + wait - 0.5, limit, window) is not None
        assert retry_after(failures, now + wait, limit, window) is None
        assert retry_after(failures, now + window + 1000, limit, window) is None
        # more failures never shorten the wait
        assert (retry_after([*failures, now], now, limit, window) or 0) >= wait


def test_decide_counts_attempts_in_flight_and_known_addresses() -> None:
    now, few, some = 100.0, [90.0] * 3, [90.0] * 5

    def go(*args: Any) -> bool:
        return decide(*args, now, 5, 60).go

    assert go([], [], 0, 0, False)
    assert go(few, few, 1, 1, False)  # 3 failed + 1 in flight: one more may be checked
    busy = decide(few, few, 2, 2, False, now, 5, 60)
    assert busy.busy and busy.wait is None  # if those 2 fail the address is at its limit
    assert decide(some, [], 0, 0, True, now, 5, 60).wait == 50  # the address failed 5 times
    # the username: USER_FACTOR times the limit, not for an address it signed in from lately
    many = [90.0] * (5 * USER_FACTOR)
    assert decide([], many, 0, 0, False, now, 5, 60).wait == 50
    assert go([], many, 0, 0, True)
    assert decide([], many[1:], 0, 1, False, now, 5, 60).busy
    assert decide([], [], 0, 0, True, now, 5, 60).per_user is False
    assert go(some, many, 9, 99, False) is False and decide(some, many, 9, 99, False, now, 0, 60).go


def test_trusted_proxies_name_the_rightmost_untrusted_hop() -> None:
    none = TrustedProxies.parse("")
    assert not none and none.client("127.0.0.1", ["198.51.100.7"]) == "127.0.0.1"
    proxies = TrustedProxies.parse("127.0.0.1, 10.0.0.0/8,::1")
    assert proxies.client("127.0.0.1", ["198.51.100.7"]) == "198.51.100.7"
    # what the client wrote itself (left of the first untrusted hop) proves nothing
    assert proxies.client("127.0.0.1", ["1.1.1.1, 198.51.100.7, 10.2.3.4"]) == "198.51.100.7"
    assert proxies.client("127.0.0.1", ["1.1.1.1", "198.51.100.7"]) == "198.51.100.7"
    assert proxies.client("127.0.0.1", []) == "127.0.0.1"
    assert proxies.client("127.0.0.1", ["10.0.0.9"]) == "10.0.0.9"  # only proxies
    assert proxies.client("127.0.0.1", ["198.51.100.7, nonsense"]) == "127.0.0.1"
    assert proxies.client("::1", ["[2001:db8::1]:4711"]) == "2001:db8::1"
    assert proxies.client("192.0.2.1", ["198.51.100.7"]) == "192.0.2.1"  # not a proxy of ours
    assert proxies.scheme("127.0.0.1", "https") == "https"
    assert proxies.scheme("192.0.2.1", "https") is None
    with pytest.raises(ValueError, match="10.0.0.300"):
        TrustedProxies.parse("127.0.0.1,10.0.0.300")


# -- on a registry -----------------------------------------------------------------------------
def _client(address: str = "127.0.0.1") -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(transport=transport, timeout=30, trust_env=False)


def _basic(user: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def get_token(reg: RegistryProcess, user: str, password: str, address: str = "127.0.0.1"):
    with _client(address) as http:
        return http.get(
            f"{reg.url}/token",
            params={"service": "cyp-registry"},
            headers={**_basic(user, password), "User-Agent": "throttle-test/1"},
        )


def post_token(reg: RegistryProcess, user: str, password: str, address: str = "127.0.0.1"):
    form = {"grant_type": "password", "username": user, "password": password}
    form |= {"service": "cyp-registry", "client_id": "test"}
    with _client(address) as http:
        return http.post(f"{reg.url}/token", data=form)


def _cli(reg: RegistryProcess, *args: str, stdin: str | None = None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYP_")}
    env.update(CYP_DATABASE_URL=as_url(reg.env["CYP_DATABASE_URL"]), CYP_LOG_LEVEL="warning")
    return subprocess.run(
        [sys.executable, "-m", "cyp_registry.cli", *args, "--data-dir", str(reg.data_dir)],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _rows(reg: RegistryProcess, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(reg.env["CYP_DATABASE_URL"], autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def _assert_throttled(answer: httpx.Response, window: int = WINDOW) -> None:
    assert answer.status_code == 429, answer.text
    assert 1 <= int(answer.headers["retry-after"]) <= window
    assert answer.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
    assert "token" not in answer.json() and "access_token" not in answer.json()


@pytest.fixture
def reg(registry_factory) -> RegistryProcess:
    proc = registry_factory(CYP_LOGIN_MAX_FAILURES=str(LIMIT), CYP_LOGIN_WINDOW=str(WINDOW)).start()
    for name, password in ((BOB, BOB_PASSWORD), (CAROL, CAROL_PASSWORD)):
        done = _cli(proc, "user", "add", name, "--password-stdin", stdin=password)
        assert done.returncode == 0, done.stderr
    # (not by signing in: a try before the users view has them would be a failure)
    wait_until(
        lambda: len(_rows(proc, "SELECT name FROM users WHERE name IN ('bob', 'carol')")) == 2
    )
    return proc


def test_failures_from_an_address_are_throttled_until_unlocked(reg: RegistryProcess) -> None:
    for _ in range(LIMIT):
        assert get_token(reg, BOB, WRONG).status_code == 401
    # the right password now from that address, in either form, as anyone: refused before
    # it is checked
    _assert_throttled(get_token(reg, BOB, BOB_PASSWORD))
    posted = post_token(reg, BOB, BOB_PASSWORD)
    _assert_throttled(posted)
    assert posted.json()["error"] == "invalid_grant"
    _assert_throttled(get_token(reg, CAROL, CAROL_PASSWORD))
    # the guesses locked their own address, not bob: he signs in from elsewhere
    assert get_token(reg, BOB, BOB_PASSWORD, "127.0.0.2").status_code == 200
    assert post_token(reg, *ADMIN, "127.0.0.4").status_code == 200

    # recorded: each throttled attempt, with no secret
    query = (
        "SELECT actor, client, details FROM history WHERE type = 'login.failed'"
        " AND details->>'reason' = 'throttled' ORDER BY position"
    )
    throttled = wait_until(lambda: len(_rows(reg, query)) >= 3 and _rows(reg, query))
    assert [client for _, client, _ in throttled] == ["127.0.0.1"] * 3
    assert [d["username"] for _, _, d in throttled] == [BOB, BOB, CAROL]
    assert all(actor == "anonymous" for actor, _, _ in throttled)
    assert throttled[0][2]["method"] == "docker"
    history = " ".join(
        str(r) for r in _rows(reg, "SELECT actor, client, details::text FROM history")
    )
    for secret in (BOB_PASSWORD, CAROL_PASSWORD, WRONG, ADMIN[1]):
        assert secret not in history and secret not in reg.log.read_text(errors="replace")

    # an admin unlocks: bob gets in again (from the address that failed, too)
    assert _cli(reg, "user", "unlock", "nobody-here").returncode == 1
    assert _cli(reg, "user", "unlock", BOB, "--address", "not-an-ip").returncode == 1
    done = _cli(reg, "user", "unlock", BOB)
    assert done.returncode == 0, done.stderr
    assert "bob" in done.stdout
    wait_until(lambda: get_token(reg, BOB, BOB_PASSWORD).status_code == 200)
    assert get_token(reg, CAROL, CAROL_PASSWORD).status_code == 200  # bob's guesses are gone
    unlocked = _rows(
        reg, "SELECT actor, details FROM history WHERE type = 'user.unlocked' ORDER BY position"
    )
    assert unlocked == [("cli", {"username": BOB, "address": ""})]


def test_failures_per_address_are_throttled(reg: RegistryProcess) -> None:
    attacker = "127.0.0.5"
    # one try each for many names: no username reaches the limit, the address does
    for i in range(LIMIT):
        assert get_token(reg, f"guess{i}", WRONG, attacker).status_code == 401
    _assert_throttled(get_token(reg, CAROL, CAROL_PASSWORD, attacker))
    _assert_throttled(post_token(reg, BOB, BOB_PASSWORD, attacker))
    # the same users from elsewhere are fine
    assert get_token(reg, CAROL, CAROL_PASSWORD).status_code == 200
    assert post_token(reg, BOB, BOB_PASSWORD, "127.0.0.6").status_code == 200
    # an admin lifts the address
    done = _cli(reg, "user", "unlock", CAROL, "--address", attacker)
    assert done.returncode == 0, done.stderr
    assert attacker in done.stdout
    wait_until(lambda: get_token(reg, CAROL, CAROL_PASSWORD, attacker).status_code == 200)
    assert _rows(reg, "SELECT count(*) FROM login_failures WHERE client = %s", attacker) == [(0,)]


def test_success_only_forgets_failures_of_its_own_address(reg: RegistryProcess) -> None:
    for _ in range(LIMIT - 2):
        assert get_token(reg, BOB, WRONG, "127.0.0.7").status_code == 401
    assert get_token(reg, BOB, WRONG, "127.0.0.8").status_code == 401
    # a success from .8 forgets the .8 failure, not those from .7
    assert get_token(reg, BOB, BOB_PASSWORD, "127.0.0.8").status_code == 200
    count = "SELECT count(*) FROM login_failures WHERE username = %s"
    wait_until(lambda: _rows(reg, count, BOB) == [(LIMIT - 2,)])
    for _ in range(2):  # more elsewhere: .8 stays open (its own failures are forgotten)
        assert get_token(reg, BOB, WRONG, "127.0.0.9").status_code == 401
    assert get_token(reg, BOB, BOB_PASSWORD, "127.0.0.8").status_code == 200
    known = "SELECT username, client FROM login_known_clients ORDER BY 1, 2"
    wait_until(lambda: _rows(reg, known) == [(BOB, "127.0.0.8")])

    # the view is replay-safe: rebuilding it from the log gives the same rows
    queries = (
        "SELECT position, occurred_at, username, client FROM login_failures ORDER BY 1",
        "SELECT username, client, succeeded_at FROM login_known_clients ORDER BY 1, 2",
    )
    live = [_rows(reg, query) for query in queries]
    reg.stop()
    done = _cli(reg, "replay", "login_failures")
    assert done.returncode == 0, done.stderr
    assert [_rows(reg, query) for query in queries] == live


def test_the_window_frees_up(registry_factory) -> None:
    reg = registry_factory(CYP_LOGIN_MAX_FAILURES="2", CYP_LOGIN_WINDOW="2").start()
    for _ in range(2):
        assert get_token(reg, *ADMIN[:1], WRONG).status_code == 401
    answer = get_token(reg, *ADMIN)
    _assert_throttled(answer, window=2)
    time.sleep(int(answer.headers["retry-after"]) + 0.1)
    assert get_token(reg, *ADMIN).status_code == 200


def test_api_login_is_throttled_too(reg: RegistryProcess) -> None:
    """Both doors count the same failures: the /api login is held back like /token."""

    def login(password: str) -> httpx.Response:
        with _client("127.0.0.9") as client:
            return client.post(
                f"{reg.url}/api/auth/login", json={"username": BOB, "password": password}
            )

    for _ in range(LIMIT):
        assert login(WRONG).status_code == 401
    held = login(BOB_PASSWORD)  # the right password does not help while throttled
    assert held.status_code == 429
    assert 0 < int(held.headers["retry-after"]) <= WINDOW
    assert held.json() == {
        "success": False,
        "error": {"code": "TOOMANYREQUESTS", "message": held.json()["error"]["message"]},
    }
    _assert_throttled(get_token(reg, BOB, BOB_PASSWORD, "127.0.0.9"))  # and on /token
    rows = _rows(
        reg,
        "SELECT details->>'method', details->>'reason' FROM history WHERE type = 'login.failed'"
        " ORDER BY position DESC LIMIT 2",
    )
    assert ("api", "throttled") in rows


# -- attacks -----------------------------------------------------------------------------------
def _counted(reg: RegistryProcess, username: str, reason: str) -> int:
    query = (
        "SELECT count(*) FROM history WHERE type = 'login.failed'"
        " AND details->>'username' = %s AND details->>'reason' = %s"
    )
    return _rows(reg, query, username, reason)[0][0]


def test_a_burst_of_parallel_wrong_passwords_checks_at_most_the_limit(
    reg: RegistryProcess,
) -> None:
    """100 wrong passwords at once from one address: the attempts are reserved before their
    passwords are checked, so at most LIMIT are checked (401); every other one is refused
    (429) without a check, and so is the right password from there afterwards."""
    attacker = "127.0.0.30"
    with ThreadPoolExecutor(100) as pool:
        answers = list(pool.map(lambda _: get_token(reg, BOB, WRONG, attacker), range(100)))
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {401, 429}, statuses
    assert statuses.count(401) <= LIMIT, statuses
    for answer in answers:
        if answer.status_code == 429:
            _assert_throttled(answer)
    assert _counted(reg, BOB, "invalid credentials") == statuses.count(401)
    _assert_throttled(get_token(reg, BOB, BOB_PASSWORD, attacker))
    # bob himself, from his own address, is not held back
    assert get_token(reg, BOB, BOB_PASSWORD, "127.0.0.31").status_code == 200


def _via_proxy(reg: RegistryProcess, user: str, password: str, forwarded: str | None):
    headers = _basic(user, password)
    if forwarded is not None:
        headers["X-Forwarded-For"] = forwarded
    with _client() as http:
        return http.get(f"{reg.url}/token", params={"service": "cyp-registry"}, headers=headers)


def _clients_of(reg: RegistryProcess, username: str) -> list[str]:
    query = (
        "SELECT client FROM history WHERE type LIKE 'login.%%'"
        " AND details->>'username' = %s ORDER BY position"
    )
    return [row[0] for row in _rows(reg, query, username)]


def test_x_forwarded_for_is_ignored_without_trusted_proxies(reg: RegistryProcess) -> None:
    """A made-up X-Forwarded-For per request neither beats the per-address throttle nor
    fakes the client in the history: without CYP_TRUSTED_PROXIES the peer is the client."""
    assert _via_proxy(reg, CAROL, CAROL_PASSWORD, "198.51.100.7").status_code == 200
    wait_until(lambda: _clients_of(reg, CAROL) == ["127.0.0.1"])
    for i in range(LIMIT):
        assert _via_proxy(reg, f"guess{i}", WRONG, f"203.0.113.{i + 1}").status_code == 401
    _assert_throttled(_via_proxy(reg, BOB, BOB_PASSWORD, "203.0.113.99"))
    assert set(_clients_of(reg, "guess0") + _clients_of(reg, BOB)) == {"127.0.0.1"}


@pytest.fixture
def behind_proxy(registry_factory) -> RegistryProcess:
    """A registry behind a proxy on 127.0.0.1 (the tests send its X-Forwarded-For)."""
    return registry_factory(
        CYP_LOGIN_MAX_FAILURES=str(LIMIT),
        CYP_LOGIN_WINDOW=str(WINDOW),
        CYP_TRUSTED_PROXIES="127.0.0.1",
    ).start()


def test_nobody_locks_an_account_from_elsewhere(behind_proxy: RegistryProcess) -> None:
    """Wrong passwords for admin from many addresses (through a trusted proxy) lock those
    addresses, not the admin: from their own address they sign in. A flood over the
    username's limit holds back only addresses that never signed in as admin lately."""
    reg, home = behind_proxy, "192.0.2.10"
    assert _via_proxy(reg, *ADMIN, home).status_code == 200  # admin's usual address
    for i in range(LIMIT + 1):
        assert _via_proxy(reg, ADMIN[0], WRONG, f"203.0.113.{i + 1}").status_code == 401
    assert _via_proxy(reg, *ADMIN, None).status_code == 200  # the proxy itself, never seen
    assert _via_proxy(reg, *ADMIN, home).status_code == 200
    wait_until(lambda: "203.0.113.1" in _clients_of(reg, ADMIN[0]))
    assert _clients_of(reg, ADMIN[0])[:2] == [home, "203.0.113.1"]

    # the username's own limit, from many more addresses: only new addresses wait
    flood = [f"198.51.100.{i + 1}" for i in range(LIMIT * USER_FACTOR)]
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda a: _via_proxy(reg, ADMIN[0], WRONG, a).status_code, flood))
    assert set(statuses) <= {401, 429} and 429 in statuses, statuses
    _assert_throttled(_via_proxy(reg, *ADMIN, "192.0.2.99"))
    assert _via_proxy(reg, *ADMIN, home).status_code == 200
    # and unlocking the user opens it to new addresses again
    done = _cli(reg, "user", "unlock", ADMIN[0])
    assert done.returncode == 0, done.stderr
    wait_until(lambda: _via_proxy(reg, *ADMIN, "192.0.2.99").status_code == 200)
