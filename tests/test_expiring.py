"""The one expiring map behind the caches of verified credentials (api.expiring)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from api.expiring import ExpiringMap


def test_an_entry_is_answered_until_it_expires() -> None:
    entries: ExpiringMap[str, int] = ExpiringMap(10, clock=lambda: 100.0)
    entries.put("a", 1, expires=105.0)
    assert entries.get("a") == 1 and entries.get("a", now=104.9) == 1
    assert entries.get("a", now=105.0) is None
    assert len(entries) == 0  # an expired entry found is forgotten
    assert entries.get("never") is None


def test_a_full_map_forgets_what_expired_first_then_the_oldest() -> None:
    entries: ExpiringMap[str, int] = ExpiringMap(3, clock=lambda: 0.0)
    entries.put("old", 0, expires=10.0)
    entries.put("dead", 0, expires=1.0)
    entries.put("young", 0, expires=10.0)
    entries.put("new", 1, expires=10.0, now=5.0)  # "dead" expired: it makes room
    assert {k for k in ("old", "young", "new") if entries.get(k, 5.0) is not None} == {
        "old",
        "young",
        "new",
    }
    entries.put("newer", 2, expires=10.0, now=5.0)  # none expired: the oldest goes
    assert entries.get("old", 5.0) is None and entries.get("newer", 5.0) == 2


@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 50), st.integers(0, 50))))
def test_never_more_than_its_bound_nor_an_expired_answer(puts: list[tuple[int, int, int]]) -> None:
    entries: ExpiringMap[int, int] = ExpiringMap(5, clock=lambda: 0.0)
    for key, expires, now in puts:
        entries.put(key, expires, float(expires), float(now))
        assert len(entries) <= 5
        found = entries.get(key, float(now))
        assert found is None if now >= expires else found == expires
