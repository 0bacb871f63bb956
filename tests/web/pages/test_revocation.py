"""Revoking (form, preview, typed confirmation), scheduling and cancelling, restoring and
deleting versions, in a real browser against a real server. Each test pushes its own
buckets, so the shared seed data is left as it was."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.sync_api import Page

from tests.support.console import Seeded
from tests.web.conftest import check_page


@dataclass
class Lineage:
    """``base``: v1, v2 (channel prod: v1 then v2; latest v2). ``child``: v1, then v2
    built on base v2 through prod (channel stable: v2; latest v2)."""

    base: str
    child: str
    b1: dict[str, Any]
    b2: dict[str, Any]
    c1: dict[str, Any]
    c2: dict[str, Any]


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def lineage(console: Seeded) -> Lineage:
    api = console.api
    base, child = _name("rv-base"), _name("rv-child")
    api.create_bucket(base)
    api.create_bucket(child)
    b1 = api.complete_version(base)
    b2 = api.complete_version(base)
    api.ok(
        api.post(
            f"/buckets/{base}/channels", {"name": "prod", "version_fingerprint": b1["fingerprint"]}
        )
    )
    api.ok(
        api.patch(
            f"/buckets/{base}/channels/prod",
            {"version_fingerprint": b2["fingerprint"], "update_mask": "versionFingerprint"},
        )
    )
    prod = api.ok(api.get(f"/buckets/{base}/channels/prod"))["channel"]
    c1 = api.complete_version(child)
    c2 = api.complete_version(child, parent=(b2["id"], prod["id"]))
    api.ok(
        api.post(
            f"/buckets/{child}/channels",
            {"name": "stable", "version_fingerprint": c2["fingerprint"]},
        )
    )
    return Lineage(base, child, b1, b2, c1, c2)


def version(console: Seeded, bucket: str, fingerprint: str) -> dict[str, Any]:
    found: dict[str, Any] = console.api.ok(
        console.api.get(f"/buckets/{bucket}/versions/{fingerprint}")
    )["version"]
    return found


def serving(console: Seeded, bucket: str, channel: str) -> str | None:
    found = console.api.ok(console.api.get(f"/buckets/{bucket}/channels/{channel}"))["channel"]
    return None if found["version"] is None else str(found["version"]["fingerprint"])


def version_url(console: Seeded, bucket: str, fingerprint: str) -> str:
    return console.url("buckets", bucket, "versions", fingerprint)


def href(console: Seeded, bucket: str, fingerprint: str) -> str:
    return f"/p/{console.project_id}/buckets/{bucket}/versions/{fingerprint}"


def submit(page: Page, name: str) -> int:
    """Click the submit button ``name``; the status of the answer to that POST."""
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name=name).click()
    page.wait_for_load_state()
    return answer.value.status


def rows(page: Page, table: str) -> list[list[str]]:
    found = page.get_by_role("table", name=table).locator("tbody tr")
    return [
        [c.strip() for c in found.nth(i).locator("td, th").all_inner_texts()]
        for i in range(found.count())
    ]


def test_revoke_with_preview_then_typed_confirmation(admin: Page, console: Seeded) -> None:
    f = lineage(console)
    fp = f.b2["fingerprint"]
    admin.goto(version_url(console, f.base, fp) + "/revoke")
    assert admin.get_by_role("heading", name="Revoke v2").is_visible()
    assert admin.get_by_label("Now").is_checked()
    assert admin.get_by_label("Also revoke the versions built from it").is_checked()
    assert admin.get_by_label("Roll channels back").is_checked()
    check_page(admin, "revoke")

    admin.get_by_label("Reason").fill("CVE-2026-4242 in glibc")
    assert submit(admin, "Preview the revocation") == 200
    # the preview: the child in the other bucket, and every channel that moves
    descendants = rows(admin, "Descendants")
    assert len(descendants) == 1
    assert descendants[0][0] == f.child and descendants[0][1].startswith("v2")
    link = admin.get_by_role("table", name="Descendants").get_by_role("link", name="v2")
    assert link.get_attribute("href") == href(console, f.child, f.c2["fingerprint"])
    channels = {(r[0], r[1].split()[0]): (r[2], r[3]) for r in rows(admin, "Channels")}
    assert channels == {
        (f.base, "latest"): ("v2", "v1"),
        (f.base, "prod"): ("v2", "v1"),
        (f.child, "latest"): ("v2", "v1"),
        (f.child, "stable"): ("v2", "unassigned"),
    }
    check_page(admin, "revoke-preview")
    assert version(console, f.base, fp)["status"] == "VERSION_ACTIVE"  # nothing changed yet

    confirm = admin.get_by_label("Type v2 to confirm")
    revoke = admin.get_by_role("button", name="Revoke v2")
    confirm.fill("v1")
    assert revoke.is_disabled()  # the page waits for the exact name ...
    revoke.evaluate("button => { button.disabled = false; }")
    assert submit(admin, "Revoke v2") == 400  # ... and so does the server
    assert admin.locator("#confirm-error").is_visible()
    assert admin.get_by_label("Type v2 to confirm").get_attribute("aria-invalid") == "true"
    assert version(console, f.base, fp)["status"] == "VERSION_ACTIVE"
    assert serving(console, f.base, "prod") == fp

    admin.get_by_label("Type v2 to confirm").fill("v2")
    submit(admin, "Revoke v2")
    assert admin.url == version_url(console, f.base, fp) + "?done=revoked"
    revoked = version(console, f.base, fp)
    assert revoked["status"] == "VERSION_REVOKED"
    assert revoked["revocation_message"] == "CVE-2026-4242 in glibc"
    assert revoked["revocation_author"] == "admin@localhost"
    child = version(console, f.child, f.c2["fingerprint"])
    assert child["status"] == "VERSION_REVOKED" and child["revocation_type"] == "INHERITED"
    assert serving(console, f.base, "prod") == f.b1["fingerprint"]
    assert serving(console, f.child, "stable") is None

    # the channel's history shows the roll-back, by its author
    admin.goto(console.url("buckets", f.base, "channels", "prod"))
    newest = admin.locator("ol.channel-history > li").first
    assert newest.get_by_text("rolled back: v2 revoked").is_visible()
    assert "admin@localhost" in newest.inner_text()


def test_the_revoke_form_explains_bad_input_next_to_the_field(
    contributor: Page, console: Seeded
) -> None:
    f = lineage(console)
    fp = f.b1["fingerprint"]
    contributor.goto(version_url(console, f.base, fp) + "/revoke")

    contributor.get_by_label("After a duration").check()
    contributor.get_by_label("Duration", exact=True).fill("soon")
    assert submit(contributor, "Preview the revocation") == 400
    assert contributor.locator("#revoke_in-error").is_visible()
    assert contributor.get_by_label("Duration", exact=True).input_value() == "soon"
    assert contributor.get_by_label("After a duration").is_checked()

    contributor.get_by_label("At a date and time").check()
    past = (datetime.now(UTC) - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M")
    contributor.get_by_label("Date and time (UTC)", exact=True).fill(past)
    assert submit(contributor, "Preview the revocation") == 400
    assert contributor.locator("#revoke_at-error").is_visible()
    assert (
        contributor.get_by_label("Date and time (UTC)", exact=True).get_attribute("aria-invalid")
        == "true"
    )

    contributor.get_by_label("Now").check()
    message = contributor.get_by_label("Reason")
    message.evaluate("area => area.removeAttribute('maxlength')")
    message.fill("x" * 5000)
    assert submit(contributor, "Preview the revocation") == 400
    assert contributor.locator("#revocation_message-error").is_visible()
    assert version(console, f.base, fp)["revoke_at"] is None


def test_schedule_a_revocation_then_cancel_it(contributor: Page, console: Seeded) -> None:
    f = lineage(console)
    fp = f.b2["fingerprint"]
    contributor.goto(version_url(console, f.base, fp) + "/revoke")
    contributor.get_by_label("After a duration").check()
    contributor.get_by_label("Duration", exact=True).fill("2h")
    contributor.get_by_label("Reason").fill("End of support")
    submit(contributor, "Preview the revocation")
    assert contributor.get_by_text("When the revocation takes effect, these channels").is_visible()
    contributor.get_by_label("Type v2 to confirm").fill("v2")
    submit(contributor, "Schedule the revocation of v2")
    assert contributor.url.endswith("?done=revocation-scheduled")
    scheduled = version(console, f.base, fp)
    assert scheduled["status"] == "VERSION_REVOCATION_SCHEDULED"
    at = datetime.fromisoformat(scheduled["revoke_at"].replace("Z", "+00:00"))
    assert timedelta(hours=1, minutes=55) < at - datetime.now(UTC) <= timedelta(hours=2)
    assert serving(console, f.base, "prod") == fp  # channels move when it takes effect

    contributor.goto(version_url(console, f.base, fp) + "/revoke")
    assert contributor.get_by_text("End of support").is_visible()
    submit(contributor, "Cancel the scheduled revocation")
    assert contributor.url == version_url(console, f.base, fp) + "?done=restored"
    cancelled = version(console, f.base, fp)
    assert cancelled["status"] == "VERSION_ACTIVE" and cancelled["revoke_at"] is None
    assert version(console, f.child, f.c2["fingerprint"])["revoke_at"] is None


def test_restore_a_revoked_version(admin: Page, console: Seeded) -> None:
    f = lineage(console)
    fp = f.b2["fingerprint"]
    console.api.ok(
        console.api.patch(
            f"/buckets/{f.base}/versions/{fp}",
            {"revoke_in": "0s", "revocation_message": "Broken kernel"},
        )
    )
    # an inherited revocation is restored on its ancestor, which the page names
    admin.goto(version_url(console, f.child, f.c2["fingerprint"]) + "/revoke")
    assert admin.get_by_role("button", name="Restore v2").count() == 0
    ancestor = admin.get_by_role("link", name=f"{f.base} v2").first
    assert ancestor.get_attribute("href") == href(console, f.base, fp)

    admin.goto(version_url(console, f.base, fp) + "/revoke")
    assert admin.get_by_text("Broken kernel").is_visible()
    assert admin.get_by_role("button", name="Preview the revocation").count() == 0
    submit(admin, "Restore v2")
    assert admin.url == version_url(console, f.base, fp) + "?done=restored"
    assert version(console, f.base, fp)["status"] == "VERSION_ACTIVE"
    assert version(console, f.child, f.c2["fingerprint"])["status"] == "VERSION_ACTIVE"


def test_delete_a_version(admin: Page, console: Seeded) -> None:
    f = lineage(console)
    fp = f.b2["fingerprint"]
    admin.goto(version_url(console, f.base, fp) + "/delete")
    assert admin.get_by_role("heading", name="Delete v2?").is_visible()
    assert admin.get_by_role("link", name="prod").is_visible()
    check_page(admin, "delete-version")

    # served by a user channel: the service refuses, and says so next to the choice
    admin.get_by_label("Type v2 to confirm").fill("v2")
    assert submit(admin, "Delete v2") == 400
    assert admin.locator("#rollback_channels-error").is_visible()
    assert "prod" in admin.locator("#rollback_channels-error").inner_text()
    assert version(console, f.base, fp)["name"] == "v2"

    admin.get_by_label("Roll these channels back").check()
    confirm = admin.get_by_label("Type v2 to confirm")
    confirm.fill("v3")
    admin.get_by_role("button", name="Delete v2").evaluate("b => { b.disabled = false; }")
    assert submit(admin, "Delete v2") == 400
    assert admin.locator("#confirm-error").is_visible()
    assert version(console, f.base, fp)["name"] == "v2"

    admin.get_by_label("Type v2 to confirm").fill("v2")
    submit(admin, "Delete v2")
    assert admin.url == console.url("buckets", f.base, "versions") + "?done=deleted"
    gone = console.api.get(f"/buckets/{f.base}/versions/{fp}")
    assert gone.status_code != 200
    assert serving(console, f.base, "prod") == f.b1["fingerprint"]


def test_a_viewer_gets_no_forms_and_forged_posts_are_refused(viewer: Page, console: Seeded) -> None:
    f = lineage(console)
    fp = f.b2["fingerprint"]
    for action in ("revoke", "delete"):
        answer = viewer.goto(version_url(console, f.base, fp) + f"/{action}")
        assert answer is not None and answer.status == 403
        assert viewer.get_by_role("heading", name="Not allowed").is_visible()
    token = viewer.locator("input[name=csrf_token]").first.get_attribute("value")
    assert token
    base = version_url(console, f.base, fp)
    forged: dict[str, dict[str, str | float | bool]] = {
        "/revoke": {"when": "now", "descendants": "yes", "rollback": "yes"},
        "/revoke/confirm": {"when": "now", "confirm": "v2", "rollback": "yes"},
        "/restore": {},
        "/delete": {"confirm": "v2", "rollback_channels": "yes"},
    }
    for path, fields in forged.items():
        posted = viewer.request.post(
            base + path, form={"csrf_token": token, **fields}, max_redirects=0
        )
        assert posted.status == 403, path
    assert version(console, f.base, fp)["status"] == "VERSION_ACTIVE"
    assert serving(console, f.base, "prod") == fp


def test_a_post_without_its_csrf_token_is_refused(admin: Page, console: Seeded) -> None:
    f = lineage(console)
    fp = f.b2["fingerprint"]
    base = version_url(console, f.base, fp)
    plain: tuple[tuple[str, dict[str, str | float | bool]], ...] = (
        ("/revoke/confirm", {"when": "now", "confirm": "v2"}),
        ("/delete", {"confirm": "v2", "rollback_channels": "yes"}),
    )
    for path, fields in plain:
        posted = admin.request.post(base + path, form=fields, max_redirects=0)
        assert posted.status == 403, path
        wrong = admin.request.post(
            base + path, form={"csrf_token": "guessed", **fields}, max_redirects=0
        )
        assert wrong.status == 403, path
    assert version(console, f.base, fp)["status"] == "VERSION_ACTIVE"


def test_a_missing_version_is_a_404_page(admin: Page, console: Seeded) -> None:
    answer = admin.goto(console.url("buckets", "ubuntu-base", "versions", "no-such-fp", "revoke"))
    assert answer is not None and answer.status == 404
    answer = admin.goto(console.url("buckets", "no-such-bucket", "versions", "x", "delete"))
    assert answer is not None and answer.status == 404
