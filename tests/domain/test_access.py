"""The access rules as a table: project role and bucket grant → what applies on a bucket."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from packyard.domain.access import (
    bucket_role,
    can_view_bucket,
    can_write_bucket,
    may_manage_bucket_access,
    view_key,
    visible_buckets,
    writable_buckets,
)
from packyard.domain.enums import Role
from packyard.domain.models import Caller, Channel, Operator
from packyard.domain.visibility import can_see_channel, restricted_scope

V, C, A = Role.VIEWER, Role.CONTRIBUTOR, Role.ADMIN


def caller(project: Role | None, **grants: Role) -> Caller:
    return Caller("p", "who", "org", "proj", project, grants)


@pytest.mark.parametrize(
    ("project", "grant", "on_a", "on_b"),
    [
        (None, None, None, None),
        (V, None, V, V),
        (C, None, C, C),
        (A, None, A, A),
        (None, V, V, None),
        (None, C, C, None),
        (None, A, A, None),
        (V, C, C, V),  # HCP's documented case: project viewer + bucket contributor
        (V, A, A, V),
        (C, V, C, C),  # additive: a lower grant never takes a project role away
        (A, V, A, A),
        (C, A, A, C),
    ],
)
def test_the_higher_of_project_role_and_grant_applies(
    project: Role | None, grant: Role | None, on_a: Role | None, on_b: Role | None
) -> None:
    who = caller(project, **({"a": grant} if grant else {}))
    assert (bucket_role(who, "a"), bucket_role(who, "b")) == (on_a, on_b)
    assert can_view_bucket(who, "b") is (on_b is not None)
    assert can_write_bucket(who, "a") is (on_a is not None and on_a.can_write)
    assert may_manage_bucket_access(who, "a") is (on_a is Role.ADMIN)


def test_only_a_project_role_sees_every_bucket() -> None:
    assert visible_buckets(caller(V)) is None
    assert visible_buckets(caller(None, a=V, b=C)) == frozenset({"a", "b"})


def test_restricted_channels_follow_write_rights_per_bucket() -> None:
    assert writable_buckets(caller(C)) is True
    assert writable_buckets(caller(V)) is False
    assert writable_buckets(caller(V, a=C, b=V)) == frozenset({"a"})
    assert restricted_scope(caller(None, a=A)) == frozenset({"a"})
    now = datetime.now(UTC)
    restricted = Channel(
        id="c",
        bucket_id="a",
        bucket_name="a",
        name="prod",
        managed=False,
        restricted=True,
        version_id=None,
        author_id="x",
        created_at=now,
        updated_at=now,
    )
    assert can_see_channel(caller(V, a=C), restricted)
    assert not can_see_channel(caller(V, b=A), restricted)


def test_callers_with_the_same_view_share_a_key_and_others_do_not() -> None:
    # A grant that changes nothing (viewer on a bucket a project viewer sees anyway) keeps
    # the key, so such callers share cached responses; any grant that changes a read does not.
    assert view_key(caller(V)) == view_key(caller(V, a=V))
    assert view_key(caller(C)) == view_key(caller(A, a=V))
    keys = {
        view_key(c)
        for c in (caller(V), caller(C), caller(V, a=C), caller(None, a=V), caller(None, a=C))
    }
    assert len(keys) == 5


def test_the_operator_manages_every_bucket() -> None:
    assert may_manage_bucket_access(Operator(), "any")
