"""The registry pages in a real browser: the bucket listing (search, label filter, sort,
pages), a bucket (channels, lineage, out-of-date warning, data-source HCL, revoked
warning), finding an image by id, and connecting a client; as admin and as viewer."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from playwright.sync_api import Browser, Locator, Page

from tests.support.console import Seeded
from tests.support.factories import unique
from tests.support.serve_process import run_cli
from tests.web.conftest import check_page, new_context, sign_in


def _rows(page: Page) -> Locator:
    return page.locator("table.buckets tbody tr")


def _row(page: Page, bucket: str) -> Locator:
    return _rows(page).filter(has=page.get_by_role("link", name=bucket, exact=True))


def _bucket_names(page: Page) -> list[str]:
    return [t.strip() for t in page.locator("table.buckets tbody th a").all_inner_texts()]


def hcl_blocks(text: str) -> list[tuple[tuple[str, ...], dict[str, str]]]:
    """The top-level blocks of generated HCL: (header words, {attribute: value}) with the
    block's own attributes (not those of nested blocks), string values unquoted,
    expressions as written."""
    blocks: list[tuple[tuple[str, ...], dict[str, str]]] = []
    current: dict[str, str] | None = None
    depth = 0
    for line in text.splitlines():
        if current is None:
            opened = re.fullmatch(r"(\w[\w-]*)((?: \"[^\"]+\")*) \{", line)
            if opened:
                words = (opened.group(1), *re.findall(r"\"([^\"]+)\"", opened.group(2)))
                current, depth = {}, 1
                blocks.append((words, current))
            continue
        depth += line.count("{") - line.count("}")
        if depth == 0:
            current = None
        elif depth == 1 and "{" not in line and "}" not in line:
            attr = re.fullmatch(r"  (\w+) +=\s(.+)", line)
            assert attr, line
            value = attr.group(2)
            current[attr.group(1)] = json.loads(value) if value.startswith('"') else value
    return blocks


def _block(text: str, *header: str) -> dict[str, str]:
    found = [attrs for words, attrs in hcl_blocks(text) if words == header]
    assert len(found) == 1, (header, text)
    return found[0]


# --- registry home ------------------------------------------------------------------------


def test_registry_home_as_admin(admin: Page, console: Seeded) -> None:
    admin.goto(console.url())
    assert admin.get_by_role("heading", level=1).inner_text().startswith("Registry")
    names = _bucket_names(admin)
    assert names == sorted(names)
    assert {"ubuntu-base", "app-server", "app-worker", "legacy-images"} <= set(names)

    app = _row(admin, "app-server")
    assert app.locator(".badge.warn", has_text="Out of date").is_visible()
    latest = app.locator("td").first.get_by_role("link", name="v1", exact=True)
    assert (
        latest.get_attribute("href")
        == f"/p/{console.project_id}/buckets/app-server/versions/app-fp-000001"
    )

    legacy = _row(admin, "legacy-images")
    assert legacy.locator(".badge.warn", has_text="Revocation scheduled").is_visible()
    assert legacy.locator("td").first.get_by_role("link", name="v2", exact=True).is_visible()
    note = legacy.locator("p.revocation").inner_text()
    assert "End of support" in note and "by admin" in note and "2099-01-01" in note

    base = _row(admin, "ubuntu-base")
    chips = base.locator(".channel-chip").all_inner_texts()
    assert any(c.startswith("staging → v2") for c in chips), chips
    assert any(c.startswith("production → v1") for c in chips), chips
    assert any(c.startswith("canary → v2") and "restricted" in c for c in chips), chips
    assert not base.locator(".badge.warn").count()
    check_page(admin, "registry-home")
    # a label chip lists the buckets with that label
    base.get_by_role("link", name="team=platform").click()
    admin.wait_for_load_state()
    assert admin.get_by_label("Label").input_value() == "team=platform"
    assert _bucket_names(admin) == ["ubuntu-base"]


def test_registry_home_as_viewer(viewer: Page, console: Seeded) -> None:
    viewer.goto(console.url())
    base = _row(viewer, "ubuntu-base")
    chips = base.locator(".channel-chip").all_inner_texts()
    assert not any(c.startswith("canary") for c in chips), chips
    assert any(c.startswith("staging → v2") for c in chips), chips
    # `latest` is restricted in the seeds: a viewer is told so, never shown its version
    latest = base.locator("td").first
    assert latest.inner_text().strip() == "restricted"
    assert not latest.get_by_role("link").count()
    assert "canary" not in viewer.content()
    check_page(viewer, "registry-home-viewer")


def test_the_registry_with_a_trailing_slash(viewer: Page, console: Seeded) -> None:
    viewer.goto(console.url() + "/?q=ubuntu")
    assert viewer.url == console.url() + "?q=ubuntu"
    assert _bucket_names(viewer) == ["ubuntu-base"]


def test_search_filters_sort_and_pages(admin: Page, console: Seeded) -> None:
    prefix = unique("paging")
    made = [f"{prefix}-{i}" for i in range(5)]
    for i, name in enumerate(made):
        console.api.create_bucket(name, labels={"tier": "gold" if i % 2 else "silver"})
        time.sleep(0.01)  # distinct update times

    admin.goto(console.url())
    admin.get_by_label("Name contains").fill(prefix)
    admin.get_by_role("button", name="Search").click()
    admin.wait_for_load_state()
    assert _bucket_names(admin) == made

    # pages of two keep the filters
    admin.goto(console.url() + f"?q={prefix}&size=2")
    seen = _bucket_names(admin)
    assert seen == made[:2]
    while True:
        following = admin.get_by_role("link", name="Next page")
        if not following.count():
            break
        href = following.get_attribute("href") or ""
        assert f"q={prefix}" in href and "size=2" in href
        following.click()
        admin.wait_for_load_state()
        seen += _bucket_names(admin)
    assert seen == made
    assert admin.get_by_role("link", name="First page").is_visible()

    # by label, key=value and key alone
    admin.goto(console.url() + f"?q={prefix}&label=tier%3Dgold")
    assert _bucket_names(admin) == [made[1], made[3]]
    assert admin.get_by_label("Label").input_value() == "tier=gold"
    admin.goto(console.url() + "?label=tier")
    assert set(made) <= set(_bucket_names(admin))
    assert "ubuntu-base" not in _bucket_names(admin)

    # newest update first
    admin.goto(console.url())
    admin.get_by_label("Name contains").fill(prefix)
    admin.get_by_label("Sort by").select_option("updated")
    admin.get_by_role("button", name="Search").click()
    admin.wait_for_load_state()
    assert _bucket_names(admin) == list(reversed(made))
    assert admin.get_by_label("Sort by").input_value() == "updated"

    admin.goto(console.url() + "?q=no-such-bucket-anywhere")
    assert admin.get_by_role("status").inner_text().startswith("No bucket matches")


def test_a_bad_filter_is_explained_next_to_its_field(admin: Page, console: Seeded) -> None:
    response = admin.goto(console.url() + "?label=%3Dvalue&q=base")
    assert response is not None and response.status == 400
    label = admin.get_by_label("Label")
    assert label.input_value() == "=value"
    assert label.get_attribute("aria-invalid") == "true"
    assert admin.locator("#label-error").is_visible()
    assert admin.get_by_label("Name contains").input_value() == "base"
    check_page(admin, "registry-home-bad-filter")


def test_an_empty_registry_says_how_to_push(browser: Browser, console: Seeded) -> None:
    made = run_cli(
        "project", "create", "--data-dir", str(console.data_dir), "--org",
        console.organization_id, "--name", unique("empty"), "--format", "json",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    project_id = _find_key(json.loads(made.stdout), "project_id")
    email = f"{unique('empty')}@example.com"
    user = run_cli(
        "user", "create", "--data-dir", str(console.data_dir), "--email", email,
        "--role", "viewer", "--project-id", project_id, "--format", "json",
    )  # fmt: skip
    assert user.returncode == 0, user.stderr
    console.users[email] = (email, json.loads(user.stdout)["password"])
    context = new_context(browser)
    page = sign_in(context, console, email)
    page.goto(f"{console.base_url}/p/{project_id}")
    empty = page.locator(".card.empty")
    assert empty.get_by_role("heading", name="No images yet").is_visible()
    connect = empty.get_by_role("link", name="Connect a client")
    assert connect.get_attribute("href") == f"/p/{project_id}/connect"
    check_page(page, "registry-home-empty")
    context.close()


def _find_key(value: Any, key: str) -> str:
    if isinstance(value, dict):
        for k, v in value.items():
            if k == key and isinstance(v, str):
                return v
            found = _find_key(v, key)
            if found:
                return found
    if isinstance(value, list):
        for item in value:
            found = _find_key(item, key)
            if found:
                return found
    return ""


# --- one bucket -----------------------------------------------------------------------------


def test_a_bucket_built_on_an_out_of_date_parent(admin: Page, console: Seeded) -> None:
    admin.goto(console.url("buckets", "app-server"))
    assert admin.get_by_role("heading", level=1, name="app-server").is_visible()
    warning = admin.locator(".alert.warn.out-of-date")
    assert warning.count() == 1
    assert warning.get_by_role("link", name="ubuntu-base").get_attribute("href") == (
        f"/p/{console.project_id}/buckets/ubuntu-base"
    )
    channel = warning.get_by_role("link", name="staging")
    assert channel.get_attribute("href") == (
        f"/p/{console.project_id}/buckets/ubuntu-base/channels/staging"
    )
    assert warning.get_by_role("link", name="v2").is_visible()  # what staging serves now

    parents = admin.locator("section", has=admin.get_by_role("heading", name="Parents"))
    row = parents.locator("tbody tr")
    assert row.count() == 1
    assert row.locator(".badge", has_text="Out of date").is_visible()
    children = admin.locator("section", has=admin.get_by_role("heading", name="Children"))
    child = children.locator("tbody tr")
    assert child.get_by_role("link", name="app-worker").is_visible()
    assert child.locator(".badge", has_text="Up to date").is_visible()

    links = {
        name: admin.get_by_role("link", name=name, exact=True).get_attribute("href")
        for name in ("All versions", "Ancestry graph", "Compare versions", "Manage channels")
    }
    base = f"/p/{console.project_id}/buckets/app-server"
    assert links == {
        "All versions": f"{base}/versions",
        "Ancestry graph": f"{base}/ancestry",
        "Compare versions": f"{base}/compare",
        "Manage channels": f"{base}/channels",
    }
    check_page(admin, "bucket")


def test_a_base_bucket_as_admin_and_as_viewer(admin: Page, viewer: Page, console: Seeded) -> None:
    admin.goto(console.url("buckets", "ubuntu-base"))
    channels = admin.locator("table", has=admin.get_by_role("columnheader", name="Channel"))
    names = [t.split()[0] for t in channels.locator("tbody th").all_inner_texts()]
    assert names == ["latest", "staging", "production", "canary"]
    canary = channels.locator("tbody tr", has_text="canary")
    assert canary.locator(".badge", has_text="restricted").is_visible()
    assert canary.get_by_role("link", name="canary").get_attribute("href") == (
        f"/p/{console.project_id}/buckets/ubuntu-base/channels/canary"
    )
    assert (
        channels.locator("tbody tr", has_text="staging")
        .locator("td")
        .last.inner_text()
        .endswith("by admin")
    )
    children = admin.locator("section", has=admin.get_by_role("heading", name="Children"))
    app = children.locator("tbody tr", has_text="app-server")
    assert app.locator(".badge", has_text="Out of date").is_visible()
    assert admin.locator(".chip", has_text="os=ubuntu").is_visible()

    viewer.goto(console.url("buckets", "ubuntu-base"))
    channels = viewer.locator("table", has=viewer.get_by_role("columnheader", name="Channel"))
    names = [t.split()[0] for t in channels.locator("tbody th").all_inner_texts()]
    assert names == ["staging", "production"]
    assert "canary" not in viewer.content()
    assert not viewer.get_by_role("link", name="Manage channels").count()
    latest = viewer.locator("dl.facts dd").first
    assert "Restricted" in latest.inner_text()
    check_page(viewer, "bucket-viewer")


def test_a_missing_bucket_is_a_404_page(viewer: Page, console: Seeded) -> None:
    response = viewer.goto(console.url("buckets", "no-such-bucket"))
    assert response is not None and response.status == 404
    assert viewer.get_by_role("heading", name="Not found").is_visible()


def test_data_source_hcl_for_a_channel_and_region(admin: Page, console: Seeded) -> None:
    admin.goto(console.url("buckets", "ubuntu-base"))
    admin.get_by_label("Channel or version").select_option("channel:production")
    admin.get_by_label("Platform").select_option("aws")
    admin.get_by_role("button", name="Show the HCL").click()
    admin.wait_for_load_state()
    admin.get_by_label("Region").select_option("eu-west-1")
    admin.get_by_role("button", name="Show the HCL").click()
    admin.wait_for_load_state()
    assert "#data-source" in admin.url and "region=eu-west-1" in admin.url

    packer = admin.locator("pre[data-hcl=packer]").inner_text()
    version = _block(packer, "data", "hcp-packer-version", "ubuntu-base")
    assert version == {"bucket_name": "ubuntu-base", "channel_name": "production"}
    artifact = _block(packer, "data", "hcp-packer-artifact", "ubuntu-base")
    assert artifact == {
        "bucket_name": "ubuntu-base",
        "version_fingerprint": "data.hcp-packer-version.ubuntu-base.fingerprint",
        "platform": "aws",
        "region": "eu-west-1",
    }
    terraform = admin.locator("pre[data-hcl=terraform]").inner_text()
    assert _block(terraform, "data", "hcp_packer_version", "ubuntu-base") == {
        "bucket_name": "ubuntu-base",
        "channel_name": "production",
    }
    assert _block(terraform, "data", "hcp_packer_artifact", "ubuntu-base") == {
        "bucket_name": "ubuntu-base",
        "channel_name": "production",
        "platform": "aws",
        "region": "eu-west-1",
    }
    copy = admin.get_by_role("button", name="Copy the Packer HCL")
    assert copy.is_visible()
    assert (copy.get_attribute("data-copy") or "").strip() == packer.strip()
    assert not admin.locator(".data-source-revoked").count()

    # the platform's regions only; another platform falls back to its own region
    admin.goto(
        console.url("buckets", "ubuntu-base")
        + "?source=channel:production&platform=azure&region=eu-west-1"
    )
    assert admin.get_by_label("Region").locator("option").all_inner_texts() == ["westeurope"]
    assert admin.locator("#ds-region-note").is_visible()
    terraform = admin.locator("pre[data-hcl=terraform]").inner_text()
    assert _block(terraform, "data", "hcp_packer_artifact", "ubuntu-base")["region"] == "westeurope"
    check_page(admin, "bucket-data-source")


def test_data_source_hcl_for_one_version(viewer: Page, console: Seeded) -> None:
    fingerprint = console.names["base_v1"]["fingerprint"]
    viewer.goto(
        console.url("buckets", "ubuntu-base") + f"?source=version:{fingerprint}&platform=azure"
    )
    packer = viewer.locator("pre[data-hcl=packer]").inner_text()
    assert [words for words, _ in hcl_blocks(packer)] == [
        ("data", "hcp-packer-artifact", "ubuntu-base")
    ]
    assert _block(packer, "data", "hcp-packer-artifact", "ubuntu-base") == {
        "bucket_name": "ubuntu-base",
        "version_fingerprint": fingerprint,
        "platform": "azure",
        "region": "westeurope",
    }
    terraform = viewer.locator("pre[data-hcl=terraform]").inner_text()
    assert _block(terraform, "data", "hcp_packer_artifact", "ubuntu-base") == {
        "bucket_name": "ubuntu-base",
        "version_fingerprint": fingerprint,
        "platform": "azure",
        "region": "westeurope",
    }


def test_a_viewer_cannot_pick_a_restricted_channel(viewer: Page, console: Seeded) -> None:
    options = viewer.goto(console.url("buckets", "ubuntu-base"))
    assert options is not None and options.status == 200
    values = (
        viewer.get_by_label("Channel or version")
        .locator("option")
        .evaluate_all("options => options.map(o => o.value)")
    )
    assert "channel:canary" not in values and "channel:latest" not in values
    response = viewer.goto(console.url("buckets", "ubuntu-base") + "?source=channel:canary")
    assert response is not None and response.status == 400
    assert viewer.locator("#source-error").is_visible()
    assert not viewer.locator("pre[data-hcl]").count()
    assert "v2" not in viewer.locator("#source-error").inner_text()


def test_a_channel_serving_a_revoked_version_warns_instead_of_offering_hcl(
    admin: Page, console: Seeded
) -> None:
    api = console.api
    bucket = unique("revoked-src")
    api.create_bucket(bucket)
    version = api.complete_version(bucket, regions=("us-east-1",))
    api.ok(
        api.post(
            f"/buckets/{bucket}/channels",
            {"name": "prod", "version_fingerprint": version["fingerprint"]},
        )
    )
    api.ok(
        api.patch(
            f"/buckets/{bucket}/versions/{version['fingerprint']}",
            {
                "revoke_at": "2020-01-01T00:00:00Z",
                "revocation_message": "Leaked credentials baked in",
                "disable_rollback_channels": True,
            },
        )
    )
    admin.goto(console.url("buckets", bucket) + "?source=channel:prod#data-source")
    alert = admin.locator(".alert.danger.data-source-revoked")
    assert alert.is_visible()
    text = alert.inner_text()
    assert "Leaked credentials baked in" in text and "by admin" in text
    assert alert.locator("time").count() == 1
    # the HCL is only behind the warning, closed, and offered for no copy
    assert not admin.locator("pre[data-hcl]").first.is_visible()
    assert not admin.get_by_role("button", name=re.compile("Copy the")).count()
    details = admin.locator("details.hcl-not-ready")
    details.locator("summary").click()
    packer = details.locator("pre[data-hcl=packer]").inner_text()
    assert _block(packer, "data", "hcp-packer-version", bucket)["channel_name"] == "prod"
    check_page(admin, "bucket-data-source-revoked")


def test_the_data_source_form_works_without_javascript(browser: Browser, console: Seeded) -> None:
    context = browser.new_context(ignore_https_errors=True, java_script_enabled=False)
    page = sign_in(context, console, "viewer")
    page.goto(console.url("buckets", "ubuntu-base"))
    page.get_by_label("Channel or version").select_option("channel:staging")
    page.get_by_role("button", name="Show the HCL").click()
    page.wait_for_load_state()
    assert "source=channel%3Astaging" in page.url
    packer = page.locator("pre[data-hcl=packer]").inner_text()
    assert _block(packer, "data", "hcp-packer-version", "ubuntu-base")["channel_name"] == "staging"
    assert not page.get_by_role("button", name="Copy the Packer HCL").is_visible()
    context.close()


# --- find an image ------------------------------------------------------------------------


def test_find_an_image_by_its_id(admin: Page, viewer: Page, console: Seeded) -> None:
    image = console.names["base_image"]
    for page, name in ((admin, "find"), (viewer, "find-viewer")):
        page.goto(console.url("find"))
        page.get_by_label("Image id").fill(image)
        page.get_by_role("button", name="Find").click()
        page.wait_for_load_state()
        rows = page.locator("table tbody tr")
        base = rows.filter(has=page.get_by_role("link", name="ubuntu-base", exact=True))
        assert base.count() == 1
        assert base.get_by_role("link", name="v1", exact=True).get_attribute("href") == (
            f"/p/{console.project_id}/buckets/ubuntu-base/versions/base-fp-000001"
        )
        assert "amazon-ebs.ubuntu" in base.inner_text() and "aws" in base.inner_text()
        assert base.locator("td").nth(3).inner_text() == "us-east-1"
        assert base.locator(".badge", has_text="Active").is_visible()
        # the same id in a revoked version says so, with who and why
        # (the seeds give legacy-images v1 the same image id)
        legacy = rows.filter(has=page.get_by_role("link", name="legacy-images", exact=True))
        assert legacy.locator(".badge", has_text="Revoked").is_visible()
        assert "CVE-2026-1234 in openssl" in legacy.inner_text()
        assert "by admin" in legacy.inner_text()
        check_page(page, name)


def test_find_empty_no_match_and_bad_input(viewer: Page, console: Seeded) -> None:
    viewer.goto(console.url("find"))
    assert viewer.get_by_label("Image id").input_value() == ""
    assert not viewer.locator("table").count()
    viewer.goto(console.url("find") + "?id=ami-nothing-like-this")
    assert "No version in this project" in viewer.get_by_role("status").inner_text()
    response = viewer.goto(console.url("find") + "?id=" + "x" * 1100)
    assert response is not None and response.status == 400
    assert viewer.locator("#id-error").is_visible()
    assert viewer.get_by_label("Image id").get_attribute("aria-invalid") == "true"
    check_page(viewer, "find-bad-input")


def test_find_shows_a_revoked_version_with_its_message(viewer: Page, console: Seeded) -> None:
    api = console.api
    bucket = unique("find-revoked")
    api.create_bucket(bucket)
    version = api.complete_version(bucket)
    image = version["builds"][0]["artifacts"][0]["external_identifier"]
    api.ok(
        api.patch(
            f"/buckets/{bucket}/versions/{version['fingerprint']}",
            {"revoke_at": "2020-01-01T00:00:00Z", "revocation_message": "Bad kernel"},
        )
    )
    viewer.goto(console.url("find") + f"?id={image}")
    row = viewer.locator("table tbody tr")
    assert row.count() == 1
    assert row.locator(".badge", has_text="Revoked").is_visible()
    assert "Bad kernel" in row.inner_text() and "by admin" in row.inner_text()


# --- connect a client -----------------------------------------------------------------------


def _env(page: Page) -> dict[str, str]:
    lines = page.locator("pre#env").inner_text().splitlines()
    found: dict[str, str] = {}
    for line in lines:
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            found[key] = value.strip("'")
        elif line.startswith("unset "):
            found[line.removeprefix("unset ")] = "<unset>"
    return found


def test_connect_a_client(admin: Page, viewer: Page, console: Seeded) -> None:
    secret = json.loads((console.data_dir / "credentials.json").read_text())["oauth"]
    for page, name in ((admin, "connect"), (viewer, "connect-viewer")):
        page.goto(console.url("connect"))
        env = _env(page)
        address = console.base_url.removeprefix("https://")
        assert env == {
            "HCP_API_ADDRESS": address,
            "HCP_API_TLS": "insecure",
            "HCP_AUTH_URL": f"https://{address}",
            "HCP_AUTH_TLS": "insecure",
            "HCP_CLIENT_ID": "<client id>",
            "HCP_CLIENT_SECRET": "<client secret>",
            "HCP_ORGANIZATION_ID": console.organization_id,
            "HCP_PROJECT_ID": console.project_id,
        }
        content = page.content()
        assert secret["client_secret"] not in content and secret["client_id"] not in content
        assert page.locator(".alert.warn.tls-warning").is_visible()  # self-signed
        assert "hcp_packer_registry {" in page.locator("pre#packer").inner_text()
        provider = _block(page.locator("pre#terraform").inner_text(), "provider", "hcp")
        assert provider == {"project_id": console.project_id}
        check_page(page, name)
    main = admin.locator("main")
    assert main.get_by_role("link", name="Create a service principal").get_attribute("href") == (
        f"/p/{console.project_id}/access"
    )
    assert (
        not viewer.locator("main").get_by_role("link", name=re.compile("service principal")).count()
    )
    assert "Only a project admin" in viewer.locator(".alert.info.credentials").inner_text()
