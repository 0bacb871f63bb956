"""A bucket's versions, one version, comparisons and the ancestry graph, in a real browser."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from playwright.sync_api import Browser, Locator, Page

from tests.support.console import PACKER_METADATA, Seeded
from tests.support.factories import Api, unique
from tests.web.conftest import check_page, new_context


def _push(
    api: Api,
    bucket: str,
    fingerprint: str,
    *,
    parent: tuple[str, str | None] | None = None,
    commit: str = "1111111",
    regions: tuple[str, ...] = ("us-east-1",),
) -> dict[str, Any]:
    """A complete one-build version pushed the way Packer pushes it."""
    api.create_version(bucket, fingerprint)
    build = api.create_build(bucket, fingerprint, "amazon-ebs.app")
    extra: dict[str, Any] = {}
    if parent is not None:
        extra["parent_version_id"] = parent[0]
        if parent[1]:
            extra["parent_channel_id"] = parent[1]
    metadata = {**PACKER_METADATA, "vcs": {"type": "git", "ref": "main", "commit": commit}}
    api.ok(
        api.update_build(
            bucket,
            fingerprint,
            build["id"],
            status="BUILD_DONE",
            platform="aws",
            labels={"os": "ubuntu-24.04"},
            artifacts=[
                {"external_identifier": f"ami-{fingerprint}-{r}", "region": r} for r in regions
            ],
            metadata=metadata,
            **extra,
        )
    )
    return api.ok(api.get(f"/buckets/{bucket}/versions/{fingerprint}"))["version"]


def _rows(page: Page) -> list[str]:
    return [
        r.inner_text().split("\n")[0].strip()
        for r in page.locator("table.versions tbody tr th").all()
    ]


def _follow(page: Page, control: Locator) -> None:
    """Click a link or submit button and wait for the page it leads to."""
    with page.expect_navigation():
        control.click()


def _version_url(console: Seeded, bucket: str, fingerprint: str) -> str:
    return console.url("buckets", bucket, "versions", fingerprint)


# --- the versions list ------------------------------------------------------------------------


def test_the_versions_of_a_bucket(admin: Page, viewer: Page, console: Seeded) -> None:
    admin.goto(console.url("buckets", "ubuntu-base", "versions"))
    assert admin.get_by_role("heading", level=1).inner_text() == "Versions of ubuntu-base"
    assert _rows(admin) == ["v2", "v1"]
    rows = admin.locator("table.versions tbody tr")
    newest, oldest = rows.nth(0), rows.nth(1)
    assert newest.get_by_text("base-fp-000002").is_visible()
    assert newest.locator(".badge").inner_text() == "Active"
    assert newest.locator("td.num").inner_text() == "2"
    assert sorted(newest.locator(".chip").all_inner_texts()) == ["canary", "latest", "staging"]
    assert oldest.locator(".chip").all_inner_texts() == ["production"]
    assert "by admin" in oldest.inner_text()
    oldest.get_by_role("link", name="v1").click()
    assert admin.url == _version_url(console, "ubuntu-base", "base-fp-000001")
    admin.go_back()
    check_page(admin, "versions")

    # A viewer sees no restricted channel (`latest` and canary are restricted).
    viewer.goto(console.url("buckets", "ubuntu-base", "versions"))
    assert viewer.locator("table.versions tbody tr").nth(0).locator(".chip").all_inner_texts() == [
        "staging"
    ]


def test_status_filter_and_pages(admin: Page, console: Seeded) -> None:
    api, bucket = console.api, unique("paged")
    api.create_bucket(bucket)
    for i in range(5):
        _push(api, bucket, f"{bucket}-fp{i}")
    api.ok(api.patch(f"/buckets/{bucket}/versions/{bucket}-fp1", {"revoke_in": "0s"}))

    admin.goto(console.url("buckets", bucket, "versions") + "?size=2")
    assert _rows(admin) == ["v5", "v4"]
    _follow(admin, admin.get_by_role("link", name="Next page"))
    assert _rows(admin) == ["v3", "v2"]
    _follow(admin, admin.get_by_role("link", name="Next page"))
    assert _rows(admin) == ["v1"]
    assert admin.get_by_role("link", name="Next page").count() == 0
    _follow(admin, admin.get_by_role("link", name="First page"))
    assert _rows(admin) == ["v5", "v4"]

    admin.goto(console.url("buckets", bucket, "versions"))
    admin.get_by_label("Status").select_option("VERSION_REVOKED")
    _follow(admin, admin.get_by_role("button", name="Filter"))
    assert "status=VERSION_REVOKED" in admin.url
    assert _rows(admin) == ["v2"]
    assert admin.get_by_label("Status").input_value() == "VERSION_REVOKED"
    admin.get_by_label("Status").select_option("VERSION_ACTIVE")
    _follow(admin, admin.get_by_role("button", name="Filter"))
    assert _rows(admin) == ["v5", "v4", "v3", "v1"]

    # Filtered pages keep their filter.
    admin.goto(console.url("buckets", bucket, "versions") + "?status=VERSION_ACTIVE&size=3")
    _follow(admin, admin.get_by_role("link", name="Next page"))
    assert _rows(admin) == ["v1"]

    admin.goto(console.url("buckets", bucket, "versions") + "?status=VERSION_RUNNING")
    assert _rows(admin) == []
    assert admin.get_by_text("are running").is_visible()

    response = admin.goto(console.url("buckets", bucket, "versions") + "?status=NONSENSE")
    assert response is not None and response.status == 400
    status = admin.get_by_label("Status")
    assert status.get_attribute("aria-invalid") == "true"
    assert admin.locator("#status-error").is_visible()
    assert len(_rows(admin)) == 5  # the unfiltered list, with the message next to the select


# --- one version ------------------------------------------------------------------------------


def test_a_version_with_its_builds_metadata_and_relations(admin: Page, console: Seeded) -> None:
    admin.goto(_version_url(console, "app-server", "app-fp-000001"))
    assert "app-server v1" in admin.get_by_role("heading", level=1).inner_text()
    assert admin.locator("h1 .badge").inner_text() == "Active"
    builds = admin.locator("section.build")
    assert builds.count() == 2
    aws = builds.filter(has_text="amazon-ebs.ubuntu")
    assert aws.locator(".chip", has_text="os=ubuntu-24.04").is_visible()
    assert aws.get_by_text("1.16.0").is_visible()
    assert aws.locator(".chip", has_text="amazon 1.3.4").is_visible()
    assert aws.get_by_text("3f2c1e9").is_visible()
    assert aws.get_by_role("link", name="https://ci.example.com/runs/42").is_visible()
    # one copy button per artifact, carrying the image id
    images = console.names["app_v1"]["images"]
    for key, image in images.items():
        platform, region = key.split(":")
        button = admin.get_by_role("button", name=f"Copy {platform} {region} image ID", exact=False)
        assert button.count() == 1, key
        assert button.get_attribute("data-copy") == image
    assert admin.locator("section.build button[data-copy]").count() == len(images)

    parents = admin.locator("table[aria-labelledby=parents-heading] tbody tr")
    assert parents.count() == 1
    assert parents.get_by_role("link", name="ubuntu-base v1").is_visible()
    assert parents.get_by_role("link", name="staging").is_visible()
    assert parents.locator(".badge", has_text="Out of date").is_visible()
    children = admin.locator("table[aria-labelledby=children-heading] tbody tr")
    assert children.count() == 1
    assert children.get_by_role("link", name="app-worker v1").is_visible()
    assert admin.locator("dl.facts").first.get_by_role("link", name="production").is_visible()

    actions = admin.get_by_role("group", name="Actions")
    assert actions.get_by_role("link", name="Assign to a channel").get_attribute("href") == (
        f"/p/{console.project_id}/buckets/app-server/channels?version=app-fp-000001"
    )
    assert actions.get_by_role("link", name="Revoke…").get_attribute("href") == (
        f"/p/{console.project_id}/buckets/app-server/versions/app-fp-000001/revoke"
    )
    assert actions.get_by_role("link", name="Delete…").is_visible()
    assert actions.get_by_role("button").count() == 0  # nothing to restore
    check_page(admin, "version")

    parents.get_by_role("link", name="ubuntu-base v1").click()
    assert admin.url == _version_url(console, "ubuntu-base", "base-fp-000001")


def test_the_revoked_version_shows_why_who_and_when(admin: Page, console: Seeded) -> None:
    revoked = console.api.ok(console.api.get("/buckets/legacy-images/versions/legacy-fp-000001"))
    author = revoked["version"]["revocation_author"]
    admin.goto(_version_url(console, "legacy-images", "legacy-fp-000001"))
    alert = admin.locator(".alert.danger.revocation")
    assert alert.is_visible()
    assert alert.get_by_text("CVE-2026-1234 in openssl").is_visible()
    assert alert.get_by_text(author, exact=True).is_visible()
    revoke_at = datetime.fromisoformat(revoked["version"]["revoke_at"].replace("Z", "+00:00"))
    shown = alert.locator("time").get_attribute("datetime") or ""
    assert datetime.fromisoformat(shown) == revoke_at.replace(microsecond=0)
    assert admin.locator("h1 .badge").inner_text() == "Revoked"
    # never offered for use: no copy buttons for its images, no channel assignment
    assert admin.locator("section.build button[data-copy]").count() == 0
    assert admin.locator("section.build .badge", has_text="Revoked").count() == 3
    actions = admin.get_by_role("group", name="Actions")
    assert actions.get_by_role("link", name="Assign to a channel").count() == 0
    assert actions.get_by_role("link", name="Revoke…").count() == 0
    restore = actions.get_by_role("button", name="Restore")
    assert restore.is_visible()
    form = restore.locator("xpath=ancestor::form")
    assert form.get_attribute("method") == "post"
    assert form.get_attribute("action") == (
        f"/p/{console.project_id}/buckets/legacy-images/versions/legacy-fp-000001/restore"
    )
    assert form.locator("input[name=csrf_token]").input_value()
    check_page(admin, "version-revoked")

    # The scheduled one offers to cancel its schedule.
    admin.goto(_version_url(console, "legacy-images", "legacy-fp-000002"))
    assert admin.locator(".alert.warn.revocation").get_by_text("End of support").is_visible()
    assert admin.get_by_role("button", name="Cancel scheduled revocation").is_visible()
    assert admin.get_by_role("link", name="Assign to a channel").is_visible()

    # The list says the same on each row.
    admin.goto(console.url("buckets", "legacy-images", "versions"))
    row = admin.locator("table.versions tbody tr").filter(has_text="legacy-fp-000001")
    assert row.locator(".badge").inner_text() == "Revoked"
    assert row.get_by_text("CVE-2026-1234 in openssl").is_visible()
    assert f"by {author}" in row.inner_text()
    assert row.locator("time").count() >= 2  # created and revoked
    scheduled = admin.locator("table.versions tbody tr").filter(has_text="legacy-fp-000002")
    assert "Takes effect" in scheduled.inner_text()
    check_page(admin, "versions-revoked")


def test_an_inherited_revocation_names_and_links_its_ancestor(admin: Page, console: Seeded) -> None:
    api = console.api
    base, app = unique("inh-base"), unique("inh-app")
    api.create_bucket(base)
    parent = _push(api, base, f"{base}-fp")
    api.create_bucket(app)
    _push(api, app, f"{app}-fp", parent=(parent["id"], None))
    api.ok(
        api.patch(
            f"/buckets/{base}/versions/{base}-fp",
            {"revoke_in": "0s", "revocation_message": "Compromised base"},
        )
    )

    admin.goto(_version_url(console, app, f"{app}-fp"))
    alert = admin.locator(".alert.danger.revocation")
    assert alert.get_by_text("Compromised base").is_visible()
    ancestor = alert.get_by_role("link", name=f"{base} v1")
    assert (
        ancestor.get_attribute("href")
        == f"/p/{console.project_id}/buckets/{base}/versions/{base}-fp"
    )
    # restored on the ancestor only: no Restore button here
    assert admin.get_by_role("group", name="Actions").get_by_role("button").count() == 0

    admin.goto(console.url("buckets", app, "versions"))
    row = admin.locator("table.versions tbody tr").first
    assert row.get_by_text("Inherited from").is_visible()
    row.get_by_role("link", name=f"{base} v1").click()
    assert admin.url == _version_url(console, base, f"{base}-fp")
    assert admin.locator("h1 .badge").inner_text() == "Revoked"

    # In the graph, both are revoked: in colour and in words.
    admin.goto(console.url("buckets", app, "ancestry"))
    nodes = admin.locator(".graph svg a.node.revoked")
    assert nodes.count() == 2
    assert all("REVOKED" in t for t in nodes.all_text_contents())
    assert admin.locator(".alert.danger li").count() == 2
    check_page(admin, "ancestry-revoked")


def test_the_sbom_download_link_returns_the_document(
    admin: Page, browser: Browser, console: Seeded
) -> None:
    admin.goto(_version_url(console, "ubuntu-base", "base-fp-000001"))
    link = admin.get_by_role("link", name="Download os-packages")
    assert link.count() == 1
    href = link.get_attribute("href")
    assert href and href.startswith("/sbom-downloads/")
    document = admin.request.get(console.base_url + href)
    assert document.status == 200
    assert orjson.loads(document.body())["bomFormat"] == "CycloneDX"
    # It works without a session too, for a while (it is signed).
    anonymous = new_context(browser)
    assert anonymous.request.get(console.base_url + href).status == 200
    anonymous.close()
    assert (
        admin.locator("section.build")
        .filter(has_text="azure-arm.ubuntu")
        .get_by_text("No SBOM was uploaded for this build.")
        .is_visible()
    )


def test_a_viewer_is_offered_no_action(viewer: Page, console: Seeded) -> None:
    for bucket, fingerprint in (
        ("app-server", "app-fp-000001"),
        ("legacy-images", "legacy-fp-000001"),
        ("legacy-images", "legacy-fp-000002"),
    ):
        viewer.goto(_version_url(console, bucket, fingerprint))
        assert viewer.get_by_role("group", name="Actions").count() == 0
        for name in ("Assign to a channel", "Revoke…", "Delete…"):
            assert viewer.get_by_role("link", name=name).count() == 0
        assert viewer.locator("main form[method=post]").count() == 0
    # still the whole page to read
    assert viewer.locator(".alert.warn.revocation").is_visible()
    viewer.goto(_version_url(console, "app-server", "app-fp-000001"))
    assert viewer.locator("section.build button[data-copy]").count() == 3
    check_page(viewer, "version-viewer")


def test_a_forged_restore_from_a_viewer_is_refused(viewer: Page, console: Seeded) -> None:
    url = _version_url(console, "legacy-images", "legacy-fp-000001")
    viewer.goto(url)
    token = viewer.locator("form[action='/sign-out'] input[name=csrf_token]").input_value()
    forged = viewer.request.post(url + "/restore", form={"csrf_token": token}, max_redirects=0)
    assert forged.status == 403
    viewer.reload()
    assert viewer.locator("h1 .badge").inner_text() == "Revoked"


def test_pages_say_what_a_finished_change_did(viewer: Page, console: Seeded) -> None:
    viewer.goto(_version_url(console, "ubuntu-base", "base-fp-000002") + "?done=restored")
    assert "revocation was lifted" in viewer.get_by_role("status").inner_text()
    viewer.goto(console.url("buckets", "ubuntu-base", "versions") + "?done=deleted")
    assert viewer.get_by_role("status").inner_text() == "The version was deleted."
    # only fixed texts: anything else in the link shows nothing
    viewer.goto(console.url("buckets", "ubuntu-base", "versions") + "?done=%3Cb%3Ehi")
    assert viewer.get_by_role("status").count() == 0


def test_a_missing_version_is_a_404_page(admin: Page, console: Seeded) -> None:
    response = admin.goto(_version_url(console, "ubuntu-base", "no-such-fingerprint"))
    assert response is not None and response.status == 404
    assert admin.get_by_role("heading", level=1).inner_text() == "Not found"
    assert admin.get_by_text("no-such-fingerprint").is_visible()
    for parts in (
        ("buckets", "no-such-bucket", "versions"),
        ("buckets", "no-such-bucket", "versions", "fp"),
        ("buckets", "no-such-bucket", "compare"),
        ("buckets", "no-such-bucket", "ancestry"),
    ):
        response = admin.goto(console.url(*parts))
        assert response is not None and response.status == 404, parts


# --- comparisons --------------------------------------------------------------------------------


def test_compare_shows_what_changed(admin: Page, console: Seeded) -> None:
    api, bucket = console.api, unique("cmp")
    api.create_bucket(bucket)
    _push(api, bucket, f"{bucket}-a", commit="aaaa111")
    _push(api, bucket, f"{bucket}-b", commit="bbbb222", regions=("us-east-1", "eu-west-1"))

    admin.goto(console.url("buckets", bucket, "compare"))
    assert admin.get_by_label("Before", exact=True).input_value() == f"{bucket}-a"
    assert admin.get_by_label("After", exact=True).input_value() == f"{bucket}-b"
    artifacts = admin.locator("section[aria-labelledby=sec-artifacts] table.changes").first
    changed = artifacts.locator("tr.change.changed")
    assert changed.count() == 1
    assert changed.get_by_role("rowheader").inner_text() == "aws · us-east-1"
    assert changed.get_by_text(f"ami-{bucket}-a-us-east-1").is_visible()
    assert changed.get_by_text(f"ami-{bucket}-b-us-east-1").is_visible()
    added = artifacts.locator("tr.change.added")
    assert added.get_by_role("rowheader").inner_text() == "aws · eu-west-1"
    commit = admin.locator("section[aria-labelledby=sec-source-control] tr", has_text="Git commit")
    assert commit.get_by_text("aaaa111").is_visible()
    assert commit.get_by_text("bbbb222").is_visible()
    assert commit.locator(".badge").inner_text() == "Changed"
    labels = admin.locator("section[aria-labelledby=sec-labels]")
    assert labels.get_by_text("No change.").is_visible()
    assert labels.locator("details summary").inner_text() == "1 unchanged"
    check_page(admin, "compare")

    # Swapping sides through the selects.
    admin.get_by_label("Before", exact=True).select_option(f"{bucket}-b")
    admin.get_by_label("After", exact=True).select_option(f"{bucket}-a")
    admin.get_by_role("button", name="Compare").click()
    assert admin.locator("section[aria-labelledby=sec-artifacts] tr.change.removed").count() == 1

    # An unknown fingerprint is explained next to its select.
    response = admin.goto(console.url("buckets", bucket, "compare") + f"?a=nope&b={bucket}-b")
    assert response is not None and response.status == 400
    before = admin.get_by_label("Before", exact=True)
    assert before.get_attribute("aria-invalid") == "true"
    assert "nope" in admin.locator("#a-error").inner_text()
    assert admin.get_by_label("After", exact=True).get_attribute("aria-invalid") is None


def test_compare_across_parents(viewer: Page, console: Seeded) -> None:
    viewer.goto(console.url("buckets", "ubuntu-base", "compare"))
    # a viewer may not see `latest`: the newest complete version against the one before
    assert viewer.get_by_label("After", exact=True).input_value() == "base-fp-000002"
    assert viewer.get_by_label("Before", exact=True).input_value() == "base-fp-000001"
    assert viewer.locator("section[aria-labelledby=sec-artifacts] tr.change.changed").count() == 3


# --- the ancestry graph ---------------------------------------------------------------------


def test_the_ancestry_graph_spans_three_generations(admin: Page, console: Seeded) -> None:
    admin.goto(console.url("buckets", "ubuntu-base", "ancestry"))
    svg = admin.locator(".graph svg")
    nodes = svg.locator("a.node")
    labels = sorted(n.get_attribute("aria-label") or "" for n in nodes.all())
    assert [label.split(",")[0] + label.split(",")[1] for label in labels] == [
        "app-server v1",
        "app-worker v1",
        "ubuntu-base v1",
    ]
    columns = {
        (n.get_attribute("aria-label") or "").split(",")[0]: float(
            n.locator("rect").get_attribute("x") or 0
        )
        for n in nodes.all()
    }
    assert columns["ubuntu-base"] < columns["app-server"] < columns["app-worker"]
    assert svg.locator("a.node.current").count() == 1
    assert "ubuntu-base" in (svg.locator("a.node.current").get_attribute("aria-label") or "")
    assert svg.locator("path.edge").count() == 2
    assert svg.locator("path.edge.out_of_date").count() == 1
    assert "out of date" in (svg.locator("path.edge.out_of_date title").text_content() or "")
    assert svg.locator("a.node.out_of_date").count() == 1  # app-server v1

    table = admin.locator("table[aria-labelledby=relations-heading] tbody tr")
    assert table.count() == 2
    stale = table.filter(has=admin.locator(".badge", has_text="Out of date"))
    assert stale.get_by_role("link", name="app-server v1").is_visible()
    assert stale.get_by_role("link", name="ubuntu-base v1").is_visible()
    check_page(admin, "ancestry")

    svg.locator("a.node", has_text="app-worker").click()
    assert admin.url == _version_url(console, "app-worker", "worker-fp-000001")


def test_the_graph_from_the_grandchild_and_a_bucket_without_relations(
    viewer: Page, console: Seeded
) -> None:
    viewer.goto(console.url("buckets", "app-worker", "ancestry"))
    assert viewer.locator(".graph svg a.node").count() == 3
    assert viewer.locator(".graph svg a.node.current").count() == 1
    viewer.goto(console.url("buckets", "legacy-images", "ancestry"))
    assert viewer.locator(".graph").count() == 0
    assert viewer.get_by_text("has a recorded parent or child yet").is_visible()
