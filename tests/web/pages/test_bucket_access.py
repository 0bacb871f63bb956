"""Bucket-level access in the console, in a real browser against a real server: write
controls follow the role on each bucket (project role or bucket grant, whichever is higher),
people with grants only reach the project and see only their buckets, and a bucket's admins
manage its grants on its page. Each test uses its own buckets and people."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.support.console import Seeded
from tests.support.serve_process import run_cli
from tests.web.conftest import check_page, new_context

SignIn = Callable[[str], Page]


@dataclass
class World:
    """Buckets ``a`` (v1, v2; channel prod → v2) and ``b`` (v1; channel prod → v1), and
    people by email: ``mixed`` (project viewer, contributor on a), ``only`` (no project
    role, viewer on a), ``badmin`` (project viewer, admin on a); ``principal`` a service
    principal (project viewer) to grant roles to."""

    a: str
    b: str
    a1: dict[str, Any]
    a2: dict[str, Any]
    b1: dict[str, Any]
    people: dict[str, tuple[str, str]]
    principal: dict[str, Any]


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _base(console: Seeded) -> str:
    return (
        f"/packyard/2026-12-01/organizations/{console.organization_id}"
        f"/projects/{console.project_id}"
    )


def _person(console: Seeded) -> tuple[str, str]:
    email = f"{_name('bucket-person')}@example.com"
    made = run_cli(
        "user",
        "create",
        "--data-dir",
        str(console.data_dir),
        "--email",
        email,
        "--role",
        "viewer",
        "--format",
        "json",
    )
    assert made.returncode == 0, made.stderr
    return email, json.loads(made.stdout)["password"]


def _grant(console: Seeded, member: str, role: str, bucket: str) -> None:
    body = {"role": role, "bucket": bucket}
    console.api.ok(console.api.put(f"{_base(console)}/access/{member}", body))


def _bucket_grants(console: Seeded, bucket: str) -> dict[str, str]:
    """member name → role, as the API lists the bucket's grants."""
    found = console.api.ok(console.api.get(f"{_base(console)}/access", params={"bucket": bucket}))
    return {e["name"]: e["role"] for e in found["access"]}


@pytest.fixture(scope="module")
def world(console: Seeded) -> World:
    api = console.api
    a, b = _name("ba-team"), _name("ba-other")
    api.create_bucket(a)
    api.create_bucket(b)
    a1, a2 = api.complete_version(a), api.complete_version(a)
    b1 = api.complete_version(b)
    for bucket, version in ((a, a2), (b, b1)):
        body = {"name": "prod", "version_fingerprint": version["fingerprint"]}
        api.ok(api.post(f"/buckets/{bucket}/channels", body))
    people = {key: _person(console) for key in ("mixed", "only", "badmin")}
    _grant(console, people["mixed"][0], "contributor", a)
    _grant(console, people["only"][0], "viewer", a)
    api.ok(api.delete(f"{_base(console)}/access/{people['only'][0]}"))  # no project role
    _grant(console, people["badmin"][0], "admin", a)
    made = api.ok(
        api.post(f"{_base(console)}/principals", {"name": _name("net-ci"), "role": "viewer"})
    )
    return World(a, b, a1, a2, b1, people, made["principal"])


@pytest.fixture
def sign_in_as(browser: Browser, console: Seeded, world: World) -> Iterator[SignIn]:
    """Sign one of the world's people in, in a browser context of their own."""
    opened: list[BrowserContext] = []

    def sign_in(who: str) -> Page:
        email, password = world.people[who]
        context = new_context(browser)
        opened.append(context)
        page = context.new_page()
        page.goto(f"{console.base_url}/sign-in")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()
        return page

    yield sign_in
    for context in opened:
        context.close()


def _version_url(console: Seeded, bucket: str, fingerprint: str) -> str:
    return console.url("buckets", bucket, "versions", fingerprint)


def _status(console: Seeded, bucket: str, fingerprint: str) -> str:
    found = console.api.ok(console.api.get(f"/buckets/{bucket}/versions/{fingerprint}"))
    return str(found["version"]["status"])


def _submit(page: Page, name: str) -> int:
    """Click the submit button ``name``; the status of the answer to that POST."""
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name=name).click()
    page.wait_for_load_state()
    return answer.value.status


def _csrf(page: Page) -> str:
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert token
    return token


def _grant_rows(page: Page) -> list[list[str]]:
    rows = page.locator("table.bucket-grants tbody tr")
    return [
        [c.strip() for c in rows.nth(i).locator("th, td").all_inner_texts()]
        for i in range(rows.count())
    ]


def test_a_bucket_contributor_writes_its_bucket_only(
    sign_in_as: SignIn, console: Seeded, world: World
) -> None:
    page = sign_in_as("mixed")
    # bucket a: the write controls of a contributor
    page.goto(console.url("buckets", world.a))
    assert page.get_by_role("link", name="Manage channels").is_visible()
    check_page(page, "bucket-access-contributor-bucket")
    page.goto(_version_url(console, world.a, world.a2["fingerprint"]))
    actions = page.get_by_role("group", name="Actions")
    assert actions.get_by_role("link", name="Revoke…").is_visible()
    assert actions.get_by_role("link", name="Delete…").is_visible()
    assert actions.get_by_role("link", name="Assign to a channel").is_visible()
    check_page(page, "bucket-access-contributor-version")
    page.goto(console.url("buckets", world.a, "channels"))
    assert page.get_by_role("heading", name="Create a channel").is_visible()
    # bucket b: a viewer's pages, and its forms refused
    page.goto(console.url("buckets", world.b))
    assert page.get_by_role("link", name="Manage channels").count() == 0
    b_version = _version_url(console, world.b, world.b1["fingerprint"])
    page.goto(b_version)
    assert page.get_by_role("group", name="Actions").count() == 0
    assert page.get_by_role("link", name="Revoke…").count() == 0
    page.goto(console.url("buckets", world.b, "channels"))
    assert page.get_by_role("heading", name="Create a channel").count() == 0
    for action in ("revoke", "delete"):
        answer = page.goto(f"{b_version}/{action}")
        assert answer is not None and answer.status == 403
        assert page.get_by_role("heading", name="Not allowed").is_visible()
    token = _csrf(page)
    forged = {
        "/revoke/confirm": {"when": "now", "confirm": "v1", "rollback": "yes"},
        "/delete": {"confirm": "v1"},
    }
    for path, fields in forged.items():
        posted = page.request.post(
            b_version + path, form={"csrf_token": token, **fields}, max_redirects=0
        )
        assert posted.status == 403, path
    channel = page.request.post(
        console.url("buckets", world.b, "channels"),
        form={"csrf_token": token, "name": "forged"},
        max_redirects=0,
    )
    assert channel.status == 403
    assert _status(console, world.b, world.b1["fingerprint"]) == "VERSION_ACTIVE"

    # and the revocation itself, in bucket a
    fp = world.a2["fingerprint"]
    page.goto(_version_url(console, world.a, fp))
    page.get_by_role("link", name="Revoke…").click()
    page.wait_for_load_state()
    check_page(page, "bucket-access-contributor-revoke")
    page.get_by_label("Reason").fill("CVE-2026-7777 in the team's image")
    assert _submit(page, "Preview the revocation") == 200
    page.get_by_label("Type v2 to confirm").fill("v2")
    _submit(page, "Revoke v2")
    assert page.url == _version_url(console, world.a, fp) + "?done=revoked"
    assert _status(console, world.a, fp) == "VERSION_REVOKED"


def test_someone_with_grants_only_sees_only_their_buckets(
    sign_in_as: SignIn, console: Seeded, world: World
) -> None:
    page = sign_in_as("only")
    # signed in, they land on the project they reach through their grant
    assert page.url.rstrip("/") == console.url()
    assert page.locator(".project-name").inner_text().endswith("bucket access")
    shown = page.locator("table.buckets tbody th a").all_inner_texts()
    assert shown == [world.a]
    check_page(page, "bucket-access-grants-only-home")
    answer = page.goto(console.url("buckets", world.b))
    assert answer is not None and answer.status == 404
    answer = page.goto(console.url("buckets", "ubuntu-base"))
    assert answer is not None and answer.status == 404
    # a viewer of bucket a: its pages, no write control, no project admin page
    page.goto(console.url("buckets", world.a))
    assert page.get_by_role("heading", name=world.a, level=1).is_visible()
    assert page.get_by_role("link", name="Manage channels").count() == 0
    assert page.get_by_role("link", name="Access", exact=True).count() == 0
    answer = page.goto(console.url("access"))
    assert answer is not None and answer.status == 403
    page.goto(f"{console.base_url}/account")
    projects = page.locator("main ul").first.locator("li").all_inner_texts()
    assert [p.split("—")[-1].strip() for p in projects] == ["bucket access"]


def test_a_bucket_admin_grants_and_removes_roles_on_its_bucket(
    sign_in_as: SignIn, console: Seeded, world: World
) -> None:
    page = sign_in_as("badmin")
    page.goto(console.url("buckets", world.a))
    section = page.get_by_role("region", name="Access")
    assert section.is_visible()
    before = _bucket_grants(console, world.a)
    rows = {r[0].removesuffix(" you"): r[1:3] for r in _grant_rows(page)}
    assert rows[world.people["badmin"][0]] == ["Person", "admin"]
    assert rows[world.people["mixed"][0]] == ["Person", "contributor"]

    # an unknown member: explained next to the field, nothing changed
    page.get_by_label("Member").fill("nobody-here@example.com")
    page.get_by_label("Role", exact=True).select_option("contributor")
    assert _submit(page, "Grant") == 400
    member = page.get_by_label("Member")
    assert member.input_value() == "nobody-here@example.com"
    assert member.get_attribute("aria-invalid") == "true"
    assert member.get_attribute("aria-describedby") == "grant-member-error"
    assert page.locator("#grant-member-error").is_visible()
    assert page.get_by_label("Role", exact=True).input_value() == "contributor"
    assert _bucket_grants(console, world.a) == before
    check_page(page, "bucket-access-grant-error")

    # a service principal by its client ID
    principal = world.principal
    page.get_by_label("Member").fill(principal["client_id"])
    page.get_by_label("Role", exact=True).select_option("contributor")
    assert _submit(page, "Grant") == 303
    assert page.get_by_role("status").filter(has_text=principal["name"]).is_visible()
    rows = {r[0]: r[1:3] for r in _grant_rows(page)}
    assert rows[principal["name"]] == ["Service principal", "contributor"]
    assert _bucket_grants(console, world.a)[principal["name"]] == "contributor"
    check_page(page, "bucket-access-granted")

    page.get_by_role(
        "button", name=f"Remove the access of {principal['name']} to {world.a}"
    ).click()
    page.wait_for_load_state()
    assert page.get_by_role("status").is_visible()
    assert principal["name"] not in {r[0] for r in _grant_rows(page)}
    assert principal["name"] not in _bucket_grants(console, world.a)

    # bucket b is not theirs to manage: no section, and a forged grant is refused
    page.goto(console.url("buckets", world.b))
    assert page.get_by_role("region", name="Access").count() == 0
    posted = page.request.post(
        console.url("buckets", world.b, "access"),
        form={"csrf_token": _csrf(page), "member": principal["client_id"], "role": "admin"},
        max_redirects=0,
    )
    assert posted.status == 403
    assert _bucket_grants(console, world.b) == {}


def test_who_does_not_manage_a_bucket_sees_no_access_form(
    sign_in_as: SignIn, console: Seeded, world: World
) -> None:
    page = sign_in_as("mixed")  # a contributor, not an admin, of bucket a
    page.goto(console.url("buckets", world.a))
    assert page.get_by_role("region", name="Access").count() == 0
    assert page.get_by_role("button", name="Grant").count() == 0
    token = _csrf(page)
    before = _bucket_grants(console, world.a)
    for path, fields in (
        ("access", {"member": world.principal["client_id"], "role": "admin"}),
        ("access/revoke", {"member": world.people["badmin"][0]}),
    ):
        posted = page.request.post(
            console.url("buckets", world.a, *path.split("/")),
            form={"csrf_token": token, **fields},
            max_redirects=0,
        )
        assert posted.status == 403, path
    assert _bucket_grants(console, world.a) == before


def test_project_admins_see_every_grant_on_the_access_page(
    admin: Page, console: Seeded, world: World
) -> None:
    admin.goto(console.url("buckets", world.b))
    assert admin.get_by_role("region", name="Access").is_visible()  # project admins manage all
    admin.goto(console.url("access"))
    table = admin.get_by_role("table", name="Roles on single buckets")
    rows = table.locator("tbody tr")
    found = {
        tuple(c.strip() for c in rows.nth(i).locator("th, td").all_inner_texts())
        for i in range(rows.count())
    }
    assert (world.people["only"][0], "Person", world.a, "viewer") in found
    assert (world.people["mixed"][0], "Person", world.a, "contributor") in found
    link = table.get_by_role("link", name=world.a).first
    assert link.get_attribute("href") == f"/p/{console.project_id}/buckets/{world.a}#access"
    check_page(admin, "bucket-access-project-page")
