"""The policy without a server: every role x every action, public namespaces, anonymous pull,
the limits of personal access tokens and robots — and, generated, that the grant is always a
subset of the request and never beyond what the roles allow."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.access_tokens import (
    check_scopes,
    new_personal_secret,
    parse_robot_name,
    pat_id,
    robot_name,
    secret_hash,
    secret_matches,
)
from domain.errors import RegistryError
from domain.names import namespace_of
from domain.policy import (
    ANONYMOUS,
    CATALOG,
    REPOSITORY_ACTIONS,
    ROLE_ACTIONS,
    NamespaceFacts,
    Principal,
    Scope,
    granted,
    parse_scopes,
    repository_actions,
    visible_namespaces,
)

ALL = ("pull", "push", "delete")


def test_namespace_of() -> None:
    assert namespace_of("myapp") == "library"
    assert namespace_of("org/app") == "org"
    assert namespace_of("team/web/frontend") == "team"
    assert namespace_of("library/nginx") == "library"


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("owner", ALL),
        ("maintainer", ALL),
        ("developer", ("pull", "push")),
        ("reader", ("pull",)),
        (None, ()),
    ],
)
def test_member_roles(role, expected) -> None:
    alice = Principal("alice", "user")
    private = NamespaceFacts(False, role)
    assert repository_actions(alice, "org", private, False) == expected
    public = NamespaceFacts(True, role)
    assert repository_actions(alice, "org", public, False) == tuple(
        a for a in ALL if a in set(expected) | {"pull"}
    )


def test_admins_may_do_everything_even_where_nothing_exists() -> None:
    root = Principal("root", "admin")
    assert repository_actions(root, "nowhere", None, False) == ALL
    asked = parse_scopes(["repository:new/app:pull,push,delete", "registry:catalog:*"])
    assert granted(root, {}, asked) == asked


def test_anonymous_pull_only_when_turned_on_and_public() -> None:
    public, private = NamespaceFacts(True, None), NamespaceFacts(False, None)
    assert repository_actions(ANONYMOUS, "org", public, False) == ()
    assert repository_actions(ANONYMOUS, "org", public, True) == ("pull",)
    assert repository_actions(ANONYMOUS, "org", private, True) == ()
    asked = parse_scopes(["repository:org/app:pull,push", "registry:catalog:*"])
    assert granted(ANONYMOUS, {"org": public}, asked, True) == [
        Scope("repository", "org/app", ("pull",))
    ]


def test_grants_are_the_permitted_subset() -> None:
    asked = parse_scopes(
        [
            "repository:alice/app:pull,push,delete,frob",
            "repository:bob/app:pull",
            "repository:app:pull",
            "registry:catalog:*",
            "other:thing:pull",
        ]
    )
    facts = {"alice": NamespaceFacts(False, "owner"), "bob": NamespaceFacts(False, None)}
    assert granted(Principal("alice", "user"), facts, asked) == [
        Scope("repository", "alice/app", ("pull", "push", "delete")),
        Scope("registry", "catalog", ("*",)),
    ]


def test_personal_access_token_limits() -> None:
    facts = {"org": NamespaceFacts(False, "maintainer"), "alice": NamespaceFacts(False, "owner")}
    asked = parse_scopes(["repository:org/app:pull,push,delete", "repository:alice/x:push"])
    pull_only = Principal("alice", "user", {"org": ("pull",)})
    assert granted(pull_only, facts, asked) == [Scope("repository", "org/app", ("pull",))]
    anywhere = Principal("alice", "user", {"*": ("pull", "push")})
    assert granted(anywhere, facts, asked) == [
        Scope("repository", "org/app", ("pull", "push")),
        Scope("repository", "alice/x", ("push",)),
    ]
    # a token never gives more than its user's role: a reader's push token pushes nothing
    reader = {"org": NamespaceFacts(False, "reader")}
    assert granted(Principal("bob", "user", {"org": ALL}), reader, asked[:1]) == [
        Scope("repository", "org/app", ("pull",))
    ]


def test_robots_have_their_limits_alone() -> None:
    robot = Principal("robot$org+ci", "robot", {"org": ("pull", "push")})
    asked = parse_scopes(["repository:org/app:pull,push,delete", "repository:other/app:pull"])
    assert granted(robot, {}, asked) == [Scope("repository", "org/app", ("pull", "push"))]
    assert visible_namespaces(robot, None) == ["org"]


def test_visible_namespaces() -> None:
    assert visible_namespaces(Principal("root", "admin"), None) is None
    assert visible_namespaces(Principal("a", "user"), ["a", "pub"]) == ["a", "pub"]
    assert visible_namespaces(Principal("a", "user", {"a": ("push",)}), ["a"]) == []
    assert visible_namespaces(Principal("a", "user", {"a": ("pull",), "b": ("pull",)}), ["a"]) == [
        "a"
    ]
    assert visible_namespaces(Principal("a", "user", {"*": ("pull",)}), ["a"]) == ["a"]
    assert visible_namespaces(Principal("a", "user", {"*": ("push",)}), ["a"]) == []
    assert visible_namespaces(Principal("r", "admin", {"*": ("pull",)}), None) is None


def test_token_secrets() -> None:
    token_id, secret = new_personal_secret()
    assert pat_id(secret) == token_id
    assert secret_matches(secret, secret_hash(secret))
    assert not secret_matches(secret + "x", secret_hash(secret))
    for bad in ["", "cyp_pat_", "cyp_pat_short_x", "password", "cyp_pat_" + "g" * 16 + "_x"]:
        assert pat_id(bad) is None, bad
    assert parse_robot_name(robot_name("org", "ci")) == ("org", "ci")
    for bad in ["robot$", "robot$org", "robot$org+", "robot$Org+ci", "robot$+ci", "org+ci"]:
        assert parse_robot_name(bad) is None, bad


def test_scope_checks() -> None:
    assert check_scopes([{"namespace": "org", "actions": ["push", "pull"]}]) == {
        "org": ("pull", "push")
    }
    for bad in [
        [],
        "org",
        [{"namespace": "org"}],
        [{"namespace": "org", "actions": []}],
        [{"namespace": "Org", "actions": ["pull"]}],
        [{"namespace": "org", "actions": ["fly"]}],
        [{"namespace": "*", "actions": ["pull"]}, {"namespace": "org", "actions": ["pull"]}],
        [{"namespace": "org", "actions": ["pull"]}, {"namespace": "org", "actions": ["push"]}],
        [{"namespace": "org", "actions": ["pull"], "extra": 1}],
    ]:
        with pytest.raises(RegistryError):
            check_scopes(bad)


# -- generated: never a grant beyond the request or the roles --------------------------------
_namespace = st.sampled_from(["library", "alice", "org", "pub"])
_name = st.builds(
    lambda ns, rest: rest if ns == "library" else f"{ns}/{rest}",
    _namespace,
    st.from_regex(r"[a-z]{1,3}(/[a-z]{1,3}){0,1}", fullmatch=True),
)
_action = st.sampled_from(["pull", "push", "delete", "*", "frob"])
_scope = st.builds(
    Scope,
    st.sampled_from(["repository", "registry", "other"]),
    st.one_of(_name, st.just("catalog")),
    st.lists(_action, min_size=1, max_size=4, unique=True).map(tuple),
)
_facts = st.dictionaries(
    _namespace,
    st.builds(NamespaceFacts, st.booleans(), st.sampled_from([None, *ROLE_ACTIONS])),
)
_limits = st.one_of(
    st.none(),
    st.dictionaries(
        st.sampled_from(["*", "org", "alice"]),
        st.lists(st.sampled_from(REPOSITORY_ACTIONS), min_size=1, unique=True).map(tuple),
        max_size=2,
    ),
)
_principal = st.one_of(
    st.just(ANONYMOUS),
    st.builds(
        Principal, st.sampled_from(["alice", "bob"]), st.sampled_from(["user", "admin"]), _limits
    ),
    st.builds(
        Principal,
        st.just("robot$org+ci"),
        st.just("robot"),
        st.dictionaries(st.just("org"), st.just(("pull",))),
    ),
)


@given(_principal, _facts, st.lists(_scope, max_size=6), st.booleans())
def test_granted_is_a_subset_of_the_request_and_the_roles(principal, facts, asked, anon) -> None:
    result = granted(principal, facts, asked, anon)
    remaining = iter(asked)
    for scope in result:
        # an ordered sub-sequence of the request, each with a subset of the requested actions
        assert any(
            (s.type, s.name) == (scope.type, scope.name) and set(scope.actions) <= set(s.actions)
            for s in remaining
        )
        assert scope.actions
        if (scope.type, scope.name) == CATALOG:
            assert principal.username and scope.actions == ("*",)
            continue
        assert scope.type == "repository" and set(scope.actions) <= set(ALL)
        namespace = namespace_of(scope.name)
        fact = facts.get(namespace)
        if principal.limits is not None:
            limit = principal.limits.get(namespace, principal.limits.get("*", ()))
            assert set(scope.actions) <= set(limit)
        if principal.role == "admin" or principal.role == "robot":
            continue
        allowed = set(ROLE_ACTIONS.get(fact.role or "", ())) if fact else set()
        if fact is not None and fact.public and (principal.username or anon):
            allowed.add("pull")
        assert set(scope.actions) <= allowed
