"""Access: a project's admins manage its people and service principals, in a real browser
against a real server. Passwords and secrets are shown once, in the answer to the form; the
services refuse what must be refused, and what they refuse is explained next to the control."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, Response

from tests.support.console import Seeded
from tests.support.serve_process import run_cli
from tests.support.wire import go_basic, token_form
from tests.web.conftest import check_page, new_context

ROLES = ("contributor", "viewer")


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _open(page: Page, console: Seeded) -> Response:
    response = page.goto(console.url("access"))
    assert response is not None
    return response


def _submit(page: Page, button: Locator) -> Response:
    """Submit a form; the answer to its POST (the page then shows where it led)."""
    with (
        page.expect_response(lambda r: r.request.method == "POST") as answer,
        page.expect_navigation(),
    ):
        button.click()
    return answer.value


def _row(page: Page, name: str) -> Locator:
    header = page.get_by_role("rowheader", name=re.compile(rf"^{re.escape(name)}( you)?$"))
    row = page.locator("tbody tr", has=header)
    assert row.count() == 1, name
    return row


def _copied(page: Page, label: str) -> str:
    """The value a copy button copies (what the person would paste)."""
    value = page.get_by_role("button", name=label, exact=True).get_attribute("data-copy")
    assert value
    return value


def _csrf(page: Page) -> str:
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert token
    return token


def _users(console: Seeded) -> dict[str, dict[str, Any]]:
    listed = run_cli(
        "user", "list", "--data-dir", str(console.data_dir), "--format", "json", timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    return {u["email"]: u for u in json.loads(listed.stdout)}


def _new_user(console: Seeded, role: str = "viewer") -> tuple[str, str]:
    email = f"{_unique('person')}@example.com"
    made = run_cli(
        "user",
        "create",
        "--data-dir",
        str(console.data_dir),
        "--email",
        email,
        "--role",
        role,
        "--format",
        "json",
    )
    assert made.returncode == 0, made.stderr
    return email, json.loads(made.stdout)["password"]


def _principals(console: Seeded) -> dict[str, dict[str, Any]]:
    t = console.api.tenant
    path = f"/packyard/2026-12-01/organizations/{t.organization_id}/projects/{t.project_id}"
    listed = console.api.ok(console.api.get(f"{path}/principals"))["principals"]
    return {p["name"]: p for p in listed}


def _token(console: Seeded, client_id: str, secret: str) -> httpx.Response:
    with httpx.Client(base_url=console.base_url, verify=False, timeout=30) as http:
        return http.post(
            "/oauth2/token",
            data=token_form(),
            headers={"Authorization": go_basic(client_id, secret)},
        )


def _try_sign_in(browser: Browser, console: Seeded, email: str, password: str) -> int:
    """The status of a sign-in with these credentials, in a browser of their own."""
    context = new_context(browser)
    page = context.new_page()
    page.goto(console.base_url + "/sign-in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    answer = _submit(page, page.get_by_role("button", name="Sign in"))
    context.close()
    return answer.status


def _create_principal(page: Page, console: Seeded, name: str, role: str) -> tuple[str, str]:
    _open(page, console)
    page.get_by_label("Name").fill(name)
    page.get_by_label("Role", exact=True).nth(1).select_option(role)
    answer = _submit(page, page.get_by_role("button", name="Create service principal"))
    assert answer.status == 200
    return _copied(page, "Copy the client ID"), _copied(page, "Copy the client secret")


def _notice(page: Page) -> str:
    return page.get_by_role("status").inner_text()


# --- reading ----------------------------------------------------------------------------


def test_the_access_page_lists_people_and_principals(admin: Page, console: Seeded) -> None:
    response = _open(admin, console)
    assert response.status == 200
    assert response.headers["cache-control"] == "no-store"
    assert admin.get_by_role("link", name="Access").get_attribute("aria-current") == "page"
    people = admin.get_by_role("table", name="People")
    for email in ("admin@localhost", "contributor@example.com", "viewer@example.com"):
        assert people.get_by_role("rowheader", name=re.compile(re.escape(email))).is_visible()
    me = _row(admin, "admin@localhost")
    assert me.get_by_text("you", exact=True).is_visible()
    assert me.get_by_role("combobox").count() == 0  # no control over one's own access
    assert me.get_by_role("button").count() == 0
    viewer = _row(admin, "viewer@example.com")
    assert viewer.get_by_label("Role of viewer@example.com").input_value() == "viewer"
    assert viewer.get_by_text("Enabled").is_visible()
    assert viewer.get_by_role("button", name="Disable viewer@example.com").is_visible()
    principals = admin.get_by_role("table", name="Service principals")
    bootstrap = _principals(console)["admin"]
    row = principals.locator("tr", has_text=bootstrap["client_id"])
    assert (
        row.get_by_role("button", name="Copy the client ID of admin").get_attribute("data-copy")
        == (bootstrap["client_id"])
    )
    assert row.get_by_label("Role of admin").input_value() == "admin"
    check_page(admin, "access")


def test_contributors_and_viewers_may_not_manage_access(
    request: pytest.FixtureRequest, console: Seeded
) -> None:
    admin_id = _principals(console)["admin"]["id"]
    for role in ROLES:
        page: Page = request.getfixturevalue(role)
        assert page.get_by_role("link", name="Access").count() == 0
        response = _open(page, console)
        assert response.status == 403
        assert page.get_by_role("heading", name="Not allowed").is_visible()
        assert page.get_by_role("table").count() == 0
        token = _csrf(page)
        email = f"{_unique('forged')}@example.com"
        me = _users(console)[f"{role}@example.com"]
        forged = {
            "users": {"email": email, "role": "admin"},
            "principals": {"name": _unique("forged"), "role": "admin"},
            f"users/{me['id']}/role": {"role": "admin"},
            f"principals/{admin_id}/disable": {},
            f"principals/{admin_id}/rotate-secret": {"revoke_tokens": "true"},
            f"principals/{admin_id}/delete": {"confirm": "admin"},
        }
        for path, values in forged.items():
            answer = page.request.post(
                console.url("access", *path.split("/")),
                form={"csrf_token": token, **values},
                max_redirects=0,
            )
            assert answer.status == 403, (role, path, answer.status)
        users = _users(console)
        assert email not in users
        assert users[f"{role}@example.com"]["role"] == role
        principals = _principals(console)
        assert principals["admin"]["role"] == "admin"
        assert not principals["admin"]["disabled"]
        assert not any(name.startswith("forged-") for name in principals)
    # the bootstrap admin still works with its secret: nothing was rotated or disabled
    creds = json.loads((console.data_dir / "credentials.json").read_text())["oauth"]
    assert _token(console, creds["client_id"], creds["client_secret"]).status_code == 200


# --- people -------------------------------------------------------------------------------


def test_an_admin_adds_a_person_who_can_then_sign_in(
    admin: Page, browser: Browser, console: Seeded
) -> None:
    email = f"{_unique('ana')}@example.com"
    _open(admin, console)
    admin.get_by_label("Email").fill(email)
    admin.get_by_label("Role", exact=True).first.select_option("contributor")
    answer = _submit(admin, admin.get_by_role("button", name="Add person"))
    assert answer.status == 200
    assert answer.headers["cache-control"] == "no-store"
    assert "?" not in admin.url  # the password is in the page, never in a URL
    assert admin.get_by_role("heading", name=f"Added {email}").is_visible()
    assert admin.get_by_text("Shown only now.").is_visible()
    password = _copied(admin, "Copy the password")
    assert admin.locator("dd code", has_text=password).is_visible()
    assert password not in admin.url
    check_page(admin, "access-secret")
    assert _users(console)[email]["role"] == "contributor"
    # the person signs in with the password shown
    context = new_context(browser)
    page = context.new_page()
    page.goto(console.base_url + "/sign-in?next=/account")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/account")
    assert page.get_by_text(f"Signed in as {email}").is_visible()
    context.close()
    # back on the access page, the new person is listed
    _open(admin, console)
    row = _row(admin, email)
    assert row.get_by_label(f"Role of {email}").input_value() == "contributor"


def test_bad_input_is_explained_next_to_the_field_and_creates_nothing(
    admin: Page, console: Seeded
) -> None:
    before_users, before_principals = _users(console), _principals(console)
    _open(admin, console)
    admin.get_by_label("Email").fill("not an email")
    answer = _submit(admin, admin.get_by_role("button", name="Add person"))
    assert answer.status == 400
    email = admin.get_by_label("Email")
    assert email.input_value() == "not an email"  # the person's input is kept
    assert email.get_attribute("aria-invalid") == "true"
    assert admin.locator("#user-email-error").is_visible()
    assert email.get_attribute("aria-describedby") == "user-email-error"
    assert admin.get_by_role("alert").is_visible()
    check_page(admin, "access-error")
    # an email that already has a role here
    admin.get_by_label("Email").fill("viewer@example.com")
    answer = _submit(admin, admin.get_by_role("button", name="Add person"))
    assert answer.status == 409
    assert "already has a role" in admin.locator("#user-email-error").inner_text()
    # a principal without a name
    admin.get_by_label("Name").fill("   ")
    answer = _submit(admin, admin.get_by_role("button", name="Create service principal"))
    assert answer.status == 400
    assert admin.locator("#principal-name-error").is_visible()
    assert admin.get_by_label("Name").get_attribute("aria-invalid") == "true"
    assert _users(console).keys() == before_users.keys()
    assert _principals(console).keys() == before_principals.keys()


def test_changing_a_persons_role_and_disabling_and_enabling_them(
    admin: Page, browser: Browser, console: Seeded
) -> None:
    email, password = _new_user(console, "viewer")
    context = new_context(browser)
    theirs = context.new_page()  # the person, signed in
    theirs.goto(console.base_url + "/sign-in?next=/account")
    theirs.get_by_label("Email").fill(email)
    theirs.get_by_label("Password").fill(password)
    theirs.get_by_role("button", name="Sign in").click()
    theirs.wait_for_url("**/account")

    _open(admin, console)
    _row(admin, email).get_by_label(f"Role of {email}").select_option("contributor")
    _submit(admin, _row(admin, email).get_by_role("button", name=f"Change the role of {email}"))
    assert _notice(admin) == f"Changed the role of {email}."
    assert _row(admin, email).get_by_label(f"Role of {email}").input_value() == "contributor"
    assert _users(console)[email]["role"] == "contributor"

    _submit(admin, _row(admin, email).get_by_role("button", name=f"Disable {email}"))
    assert _notice(admin).startswith(f"Disabled {email}")
    assert _row(admin, email).get_by_text("Disabled", exact=True).is_visible()
    assert _users(console)[email]["status"] == "disabled"
    theirs.goto(console.base_url + "/account")  # their session has ended
    assert "/sign-in" in theirs.url
    assert _try_sign_in(browser, console, email, password) == 401

    _submit(admin, _row(admin, email).get_by_role("button", name=f"Enable {email}"))
    assert _notice(admin).startswith(f"Enabled {email}")
    assert _row(admin, email).get_by_text("Enabled", exact=True).is_visible()
    assert _try_sign_in(browser, console, email, password) == 303
    context.close()


def test_resetting_a_password_shows_the_new_one_once_and_ends_sessions(
    admin: Page, browser: Browser, console: Seeded
) -> None:
    email, old = _new_user(console)
    context = new_context(browser)
    theirs = context.new_page()
    theirs.goto(console.base_url + "/sign-in?next=/account")
    theirs.get_by_label("Email").fill(email)
    theirs.get_by_label("Password").fill(old)
    theirs.get_by_role("button", name="Sign in").click()
    theirs.wait_for_url("**/account")

    _open(admin, console)
    answer = _submit(
        admin, _row(admin, email).get_by_role("button", name=f"Reset password of {email}")
    )
    assert answer.status == 200
    assert answer.headers["cache-control"] == "no-store"
    assert admin.get_by_role("heading", name=f"New password for {email}").is_visible()
    assert admin.get_by_text("Shown only now.").is_visible()
    new = _copied(admin, "Copy the password")
    assert new != old
    theirs.goto(console.base_url + "/account")
    assert "/sign-in" in theirs.url
    assert _try_sign_in(browser, console, email, old) == 401
    assert _try_sign_in(browser, console, email, new) == 303
    context.close()


def test_a_person_cannot_change_their_own_access(admin: Page, console: Seeded) -> None:
    _open(admin, console)
    me = _row(admin, "admin@localhost")
    my_id = (me.get_attribute("id") or "").removeprefix("user-")
    token = _csrf(admin)
    for action, values, control in (
        ("role", {"role": "viewer"}, "role"),
        ("disable", {}, "status"),
    ):
        answer = admin.request.post(
            console.url("access", "users", my_id, action),
            form={"csrf_token": token, **values},
            max_redirects=0,
        )
        assert answer.status == 400, action
        admin.set_content(answer.text())
        message = admin.locator(f"#{control}-{my_id}-error")
        assert "cannot change your own access" in message.inner_text()
        assert _row(admin, "admin@localhost").locator(f"#{control}-{my_id}-error").count() == 1
    me_now = _users(console)["admin@localhost"]
    assert (me_now["role"], me_now["status"]) == ("admin", "enabled")


# --- service principals -------------------------------------------------------------------


def test_an_admin_creates_a_principal_whose_credentials_work(admin: Page, console: Seeded) -> None:
    name = _unique("ci-pipeline")
    _open(admin, console)
    admin.get_by_label("Name").fill(name)
    admin.get_by_label("Role", exact=True).nth(1).select_option("contributor")
    answer = _submit(admin, admin.get_by_role("button", name="Create service principal"))
    assert answer.status == 200
    assert answer.headers["cache-control"] == "no-store"
    assert "?" not in admin.url
    assert admin.get_by_role("heading", name=f"Created service principal {name}").is_visible()
    assert admin.get_by_text("Shown only now.").is_visible()
    client_id = _copied(admin, "Copy the client ID")
    secret = _copied(admin, "Copy the client secret")
    lines = admin.locator("pre").inner_text()
    assert f"HCP_CLIENT_ID={client_id}\nHCP_CLIENT_SECRET={secret}\n" in lines
    assert f"HCP_PROJECT_ID={console.project_id}" in lines
    assert _copied(admin, "Copy the lines") == lines.strip()
    check_page(admin, "access-secret-principal")
    token = _token(console, client_id, secret)
    assert token.status_code == 200, token.text
    assert _principals(console)[name]["role"] == "contributor"
    _delete(admin, console, name)


def _delete(page: Page, console: Seeded, name: str) -> None:
    _open(page, console)
    row = _row(page, name)
    row.locator("summary", has_text="Delete").click()  # it opens the form
    confirm = row.get_by_label(f"Type {name} to delete it")
    button = row.get_by_role("button", name=f"Delete {name} for good")
    assert button.is_disabled()  # until the name is typed
    confirm.fill(name)
    assert button.is_enabled()
    _submit(page, button)
    assert _notice(page) == "Deleted the service principal."
    assert page.get_by_role("rowheader", name=name, exact=True).count() == 0


def test_a_principals_role_status_secret_and_deletion(admin: Page, console: Seeded) -> None:
    name = _unique("deployer")
    client_id, secret = _create_principal(admin, console, name, "viewer")
    _open(admin, console)
    _row(admin, name).get_by_label(f"Role of {name}").select_option("contributor")
    _submit(admin, _row(admin, name).get_by_role("button", name=f"Change the role of {name}"))
    assert _notice(admin) == f"Changed the role of {name}."
    assert _principals(console)[name]["role"] == "contributor"

    _submit(admin, _row(admin, name).get_by_role("button", name=f"Disable {name}"))
    assert _notice(admin).startswith(f"Disabled {name}")
    assert _row(admin, name).get_by_text("Disabled", exact=True).is_visible()
    assert _token(console, client_id, secret).status_code == 401
    _submit(admin, _row(admin, name).get_by_role("button", name=f"Enable {name}"))
    assert _notice(admin).startswith(f"Enabled {name}")
    assert _token(console, client_id, secret).status_code == 200

    # rotate, keeping the old tokens
    row = _row(admin, name)
    row.locator("summary", has_text="Rotate secret").click()
    answer = _submit(admin, row.get_by_role("button", name=f"Rotate the secret of {name}"))
    assert answer.status == 200
    assert answer.headers["cache-control"] == "no-store"
    assert admin.get_by_role("heading", name=f"New secret for {name}").is_visible()
    assert admin.get_by_text("keep working until they expire").is_visible()
    rotated = _copied(admin, "Copy the client secret")
    assert _copied(admin, "Copy the client ID") == client_id
    assert _token(console, client_id, secret).status_code == 401  # the old secret is dead
    got = _token(console, client_id, rotated)
    assert got.status_code == 200
    old_token = got.json()["access_token"]

    # rotate again after a "leak": the tokens issued with the old secret end too
    _open(admin, console)
    row = _row(admin, name)
    row.locator("summary", has_text="Rotate secret").click()
    row.get_by_label("Also end the tokens issued with the old secret").check()
    _submit(admin, row.get_by_role("button", name=f"Rotate the secret of {name}"))
    assert admin.get_by_text("have ended too").is_visible()
    newest = _copied(admin, "Copy the client secret")
    assert _token(console, client_id, newest).status_code == 200
    registry = f"{console.api.prefix}/buckets"
    deadline = time.monotonic() + 10  # the role cache remembers a token's version for 5 s
    with httpx.Client(base_url=console.base_url, verify=False, timeout=30) as http:
        while True:
            status = http.get(registry, headers={"Authorization": f"Bearer {old_token}"})
            if status.status_code == 401 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    assert status.status_code == 401

    # deleting asks for the name, on the server too
    _open(admin, console)
    principal_id = (_row(admin, name).get_attribute("id") or "").removeprefix("principal-")
    wrong = admin.request.post(
        console.url("access", "principals", principal_id, "delete"),
        form={"csrf_token": _csrf(admin), "confirm": "not its name"},
        max_redirects=0,
    )
    assert wrong.status == 400
    assert name in _principals(console)
    admin.set_content(wrong.text())
    assert admin.locator(f"#delete-{principal_id}-error").is_visible()
    _delete(admin, console, name)
    assert name not in _principals(console)
    assert _token(console, client_id, newest).status_code == 401


def test_the_last_enabled_admin_principal_is_kept(admin: Page, console: Seeded) -> None:
    principals = _principals(console)
    admins = [p for p in principals.values() if p["role"] == "admin" and not p.get("disabled")]
    assert [p["name"] for p in admins] == ["admin"], admins  # the bootstrap admin alone
    admin_id = principals["admin"]["id"]
    _open(admin, console)
    row = admin.locator(f"#principal-{admin_id}")
    answer = _submit(admin, row.get_by_role("button", name="Disable admin"))
    assert answer.status == 400
    message = admin.locator(f"#status-{admin_id}-error")
    assert "last enabled admin" in message.inner_text()
    assert admin.locator(f"#status-{admin_id}").get_attribute("aria-describedby") == (
        f"status-{admin_id}-error"
    )
    row = admin.locator(f"#principal-{admin_id}")
    row.get_by_label("Role of admin").select_option("viewer")
    answer = _submit(admin, row.get_by_role("button", name="Change the role of admin"))
    assert answer.status == 400
    assert "last enabled admin" in admin.locator(f"#role-{admin_id}-error").inner_text()
    assert admin.get_by_label("Role of admin").get_attribute("aria-invalid") == "true"
    check_page(admin, "access-refused")
    after = _principals(console)["admin"]
    assert after["role"] == "admin"
    creds = json.loads((console.data_dir / "credentials.json").read_text())["oauth"]
    assert _token(console, creds["client_id"], creds["client_secret"]).status_code == 200
