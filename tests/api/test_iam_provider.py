"""terraform-provider-hcp's bucket IAM resources replayed: apply, plan without changes,
import, update, destroy, drift and etag races (see tests/support/provider_iam.py)."""

from __future__ import annotations

import json

import pytest

from packyard.domain.enums import Role
from packyard.domain.models import Operator
from packyard.services.container import Services
from tests.support.factories import Api, Identity, make_member
from tests.support.provider_iam import POLICY, Provider, ProviderError, same_policy

PRINCIPALS = "/iam/2019-12-10/organizations/{org}/principals"


@pytest.fixture
def provider(api: Api) -> Provider:
    api.create_bucket("network-base")
    api.create_bucket("app")
    return Provider(api)


@pytest.fixture
def net_team(services: Services, api: Api) -> Identity:
    return make_member(services, api.tenant, project_role=Role.VIEWER, name="net-ci")


def name(provider: Provider, bucket: str) -> str:
    return f"packer/project/{provider.api.tenant.project_id}/bucket/{bucket}"


def test_bindings_apply_refresh_update_and_destroy(provider: Provider, net_team: Identity) -> None:
    rn, viewer = name(provider, "network-base"), provider.api.tenant.identities[Role.VIEWER]
    principals = PRINCIPALS.format(org=provider.api.tenant.organization_id)
    # apply: two bindings on one bucket, merged by the provider's 1 s batcher
    provider.modify_bindings(
        rn,
        set_=[("roles/contributor", net_team.principal_id), ("roles/viewer", viewer.principal_id)],
    )
    assert provider.calls == [("GET", POLICY), ("GET", principals), ("PUT", POLICY)]
    # plan: each binding is still there, so nothing to do
    assert provider.binding_exists(rn, "roles/contributor", net_team.principal_id)
    assert provider.binding_exists(rn, "roles/viewer", viewer.principal_id)
    # update: a changed role is set-new + remove-old in one batch
    provider.modify_bindings(
        rn,
        set_=[("roles/admin", net_team.principal_id)],
        remove=[("roles/contributor", net_team.principal_id)],
    )
    assert provider.binding_exists(rn, "roles/admin", net_team.principal_id)
    assert not provider.binding_exists(rn, "roles/contributor", net_team.principal_id)
    # destroy: removers only, so no principal look-up
    provider.calls.clear()
    provider.modify_bindings(
        rn,
        remove=[("roles/admin", net_team.principal_id), ("roles/viewer", viewer.principal_id)],
    )
    assert provider.calls == [("GET", POLICY), ("PUT", POLICY)]
    assert provider.get_iam_policy(rn)["bindings"] == []


def test_policy_from_the_data_source_applies_plans_clean_imports_and_destroys(
    provider: Provider, net_team: Identity
) -> None:
    rn = name(provider, "app")
    viewer = provider.api.tenant.identities[Role.VIEWER]
    config = provider.policy_data(
        {"roles/contributor": [net_team.principal_id], "roles/viewer": [viewer.principal_id]}
    )
    state = provider.policy_create(rn, config)
    assert state.etag
    assert same_policy(state.policy_data, config)  # no "inconsistent result after apply"
    refreshed = provider.policy_read(rn)
    assert same_policy(refreshed.policy_data, config) and refreshed.etag == state.etag
    imported = provider.policy_read(rn)  # terraform import … packer/project/<p>/bucket/app
    assert same_policy(imported.policy_data, config)
    provider.policy_delete(refreshed)
    assert provider.get_iam_policy(rn)["bindings"] == []


def test_a_change_made_outside_terraform_shows_as_drift_and_apply_restores(
    provider: Provider, net_team: Identity, services: Services
) -> None:
    rn, t = name(provider, "app"), provider.api.tenant
    config = provider.policy_data({"roles/viewer": [net_team.principal_id]})
    provider.policy_create(rn, config)
    services.access.grant(
        Operator(), t.organization_id, t.project_id, net_team.principal_id, Role.ADMIN, "app"
    )
    drifted = provider.policy_read(rn)
    assert not same_policy(drifted.policy_data, config)
    restored = provider.policy_create(rn, config)  # update = Get then Set, like create
    assert same_policy(restored.policy_data, config)


def test_an_apply_from_a_stale_read_fails_with_409_instead_of_overwriting(
    provider: Provider, net_team: Identity
) -> None:
    rn = name(provider, "network-base")
    state = provider.policy_create(rn, json.dumps({"bindings": []}))
    provider.modify_bindings(rn, set_=[("roles/viewer", net_team.principal_id)])  # another run
    with pytest.raises(ProviderError) as failed:
        provider.policy_delete(state)  # destroy with the etag the state holds
    assert failed.value.status == 409
    assert provider.binding_exists(rn, "roles/viewer", net_team.principal_id)


def test_a_missing_bucket_reads_as_no_policy_and_fails_on_apply(provider: Provider) -> None:
    rn = name(provider, "gone")
    assert provider.policy_read(rn).policy_data == json.dumps({"bindings": []})
    with pytest.raises(ProviderError) as failed:
        provider.policy_create(rn, json.dumps({"bindings": []}))
    assert failed.value.status == 404
