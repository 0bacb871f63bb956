"""Signing in and out, sessions and CSRF, in a real browser against a real server."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from playwright.sync_api import Browser, Page

from tests.support.console import Seeded
from tests.web.conftest import check_page, new_context, sign_in


def _alert(page: Page) -> str:
    return page.get_by_role("alert").inner_text().strip()


def test_signing_in_lands_on_the_registry(admin: Page, console: Seeded) -> None:
    assert admin.url.rstrip("/") == console.url()
    assert admin.get_by_role("link", name="admin@localhost").is_visible()


def test_the_sign_in_page(browser: Browser, console: Seeded) -> None:
    context = new_context(browser)
    page = context.new_page()
    page.goto(console.base_url + "/")
    assert page.url.startswith(console.base_url + "/sign-in")
    check_page(page, "sign-in")
    context.close()


def test_cookies_are_secure_httponly_and_lax(admin: Page) -> None:
    cookies = {c["name"]: c for c in admin.context.cookies()}
    session = cookies["__Host-packyard-session"]
    assert session["httpOnly"] and session["secure"]
    assert session["sameSite"] == "Lax"


def test_wrong_passwords_and_unknown_emails_read_the_same(
    browser: Browser, console: Seeded
) -> None:
    context = new_context(browser)
    answers = []
    for email, password in (
        ("viewer@example.com", "not-the-password"),
        ("nobody@example.com", "not-the-password"),
    ):
        page = context.new_page()
        page.goto(console.base_url + "/sign-in")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        with page.expect_response(lambda r: r.request.method == "POST") as response:
            page.get_by_role("button", name="Sign in").click()
        answers.append((response.value.status, _alert(page)))
        assert page.get_by_label("Email").input_value() == email
    assert answers[0] == answers[1]
    assert answers[0][0] == 401
    context.close()


def test_a_form_without_its_csrf_token_is_refused(admin: Page, console: Seeded) -> None:
    forged = admin.request.post(
        console.base_url + "/account/password",
        form={"current_password": "x", "password": "y" * 20},
        max_redirects=0,
    )
    assert forged.status == 403
    wrong = admin.request.post(
        console.base_url + "/sign-out", form={"csrf_token": "guessed"}, max_redirects=0
    )
    assert wrong.status == 403
    admin.goto(console.url())
    assert admin.url.rstrip("/") == console.url()


def test_sign_out_ends_the_session(browser: Browser, console: Seeded) -> None:
    context = new_context(browser)
    page = sign_in(context, console, "viewer")
    cookies = context.cookies()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/sign-in")
    other = new_context(browser)
    other.add_cookies(cookies)  # type: ignore[arg-type]  # the old cookie, replayed
    replay = other.new_page()
    replay.goto(console.url())
    assert "/sign-in" in replay.url
    other.close()
    context.close()


def test_an_expired_session_leads_to_sign_in_and_back(browser: Browser, console: Seeded) -> None:
    context = new_context(browser)
    page = sign_in(context, console, "contributor")
    target = console.url("connect")
    with sqlite3.connect(console.data_dir / "packyard.db") as db:
        long_ago = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%d %H:%M:%S.%f")
        db.execute("UPDATE web_sessions SET last_seen_at = ?, created_at = ?", (long_ago, long_ago))
    page.goto(target)
    assert "/sign-in" in page.url
    assert page.get_by_role("status").inner_text().startswith("Your session has ended")
    email, password = console.users["contributor"]
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(target)
    context.close()


def test_no_open_redirect_after_sign_in(browser: Browser, console: Seeded) -> None:
    context = new_context(browser)
    page = sign_in(context, console, "viewer", next_path="//evil.example/steal")
    assert page.url.startswith(console.base_url)
    context.close()


def test_changing_ones_password(browser: Browser, console: Seeded) -> None:
    context = new_context(browser)
    page = sign_in(context, console, "viewer")
    page.goto(console.base_url + "/account")
    check_page(page, "account")
    email, password = console.users["viewer"]
    page.get_by_label("Current password").fill("wrong password entirely")
    page.get_by_label("New password").fill("a brand new passphrase")
    page.get_by_role("button", name="Change password").click()
    error = page.locator("#current_password-error")
    assert error.is_visible()
    assert page.get_by_label("Current password").get_attribute("aria-invalid") == "true"
    page.get_by_label("Current password").fill(password)
    page.get_by_label("New password").fill("short")
    page.get_by_role("button", name="Change password").click()
    # the browser itself stops a too-short password (minlength); the server says so too
    assert page.url.endswith("/account") or page.url.endswith("/account/password")
    page.get_by_label("New password").fill("a brand new passphrase")
    page.get_by_role("button", name="Change password").click()
    assert page.get_by_role("status").is_visible()
    console.users["viewer"] = (email, "a brand new passphrase")
    context.close()


def test_signing_in_with_the_keyboard_alone(browser: Browser, console: Seeded) -> None:
    context = new_context(browser)
    page = context.new_page()
    page.goto(console.base_url + "/sign-in")
    assert page.evaluate("document.activeElement.id") == "email"  # autofocus
    email, password = console.users["admin"]
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "password"
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    page.wait_for_url(console.url())
    # the first Tab on a page reaches the skip link, whose target is the main content
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    context.close()
