"""SBOM upload, listing and token-less download links."""

from __future__ import annotations

import base64
import tracemalloc
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
import zstandard

from packyard.domain.enums import SbomFormat
from packyard.errors import ApiError, Code
from packyard.services.container import Services
from packyard.services.sboms import MAX_SBOM_BYTES, SbomLimits
from tests.support import swagger
from tests.support.factories import Api, assert_status

CYCLONEDX = {"bomFormat": "CycloneDX", "specVersion": "1.5", "components": [{"name": "openssl"}]}
SPDX = {"spdxVersion": "SPDX-2.3", "packages": [{"name": "bash"}]}


def compress(document: object) -> str:
    raw = orjson.dumps(document)
    return base64.b64encode(zstandard.ZstdCompressor(level=19).compress(raw)).decode()


def running_build(api: Api) -> tuple[str, str, str]:
    api.create_bucket("sbom-bucket")
    api.create_version("sbom-bucket", "fp-sbom")
    build = api.create_build("sbom-bucket", "fp-sbom", "null.a")
    api.ok(api.update_build("sbom-bucket", "fp-sbom", build["id"], status="BUILD_RUNNING"))
    return "sbom-bucket", "fp-sbom", build["id"]


def sboms_path(bucket: str, fp: str, build_id: str) -> str:
    return f"/buckets/{bucket}/versions/{fp}/builds/{build_id}/sboms"


def test_upload_list_and_download(api: Api) -> None:
    bucket, fp, build_id = running_build(api)
    path = sboms_path(bucket, fp, build_id)
    up = api.ok(api.put(path, {"compressed_sbom": compress(CYCLONEDX), "format": "CYCLONEDX"}))
    swagger.validate("PackerService_UploadSbom", up)
    assert up["sbom"]["format"] == "CYCLONEDX" and len(up["sbom"]["name"]) == 26
    named = api.ok(
        api.put(path, {"compressed_sbom": compress(SPDX), "format": "SPDX", "name": "os-pkgs"})
    )
    assert named["sbom"]["name"] == "os-pkgs"
    listed = api.ok(api.get(path))
    swagger.validate("PackerService_ListSboms", listed)
    assert {s["name"] for s in listed["sboms"]} == {up["sbom"]["name"], "os-pkgs"}

    link = api.ok(api.get(f"{path}/os-pkgs"))
    swagger.validate("PackerService_GetSbom", link)
    assert set(link) == {"download_url"}
    downloaded = httpx.get(link["download_url"])  # no Authorization header
    assert downloaded.status_code == 200
    assert downloaded.content == orjson.dumps(SPDX)


def test_download_links_follow_the_key_rotation(api: Api, services: Services) -> None:
    bucket, fp, build_id = running_build(api)
    path = sboms_path(bucket, fp, build_id)
    api.ok(api.put(path, {"compressed_sbom": compress(SPDX), "format": "SPDX", "name": "doc"}))
    url = api.ok(api.get(f"{path}/doc"))["download_url"]
    services.auth.keys.rotate(timedelta(hours=1))
    assert httpx.get(url).status_code == 200  # the old key still verifies in its grace period
    services.auth.keys.rotate(timedelta(0))
    assert_status(httpx.get(url), 404, 5)


def test_upload_refused_once_build_is_done(api: Api) -> None:
    bucket, fp, build_id = running_build(api)
    api.finish_build(bucket, fp, build_id)
    r = api.put(
        sboms_path(bucket, fp, build_id), {"compressed_sbom": compress(SPDX), "format": "SPDX"}
    )
    body = assert_status(r, 400, 3)
    assert body["message"] == "This build's status isn't Running, so sboms can not be uploaded"


def test_bad_documents_are_refused(api: Api) -> None:
    bucket, fp, build_id = running_build(api)
    path = sboms_path(bucket, fp, build_id)
    assert_status(api.put(path, {"compressed_sbom": "%%%", "format": "SPDX"}), 400, 3)
    not_zstd = base64.b64encode(b"plain").decode()
    assert_status(api.put(path, {"compressed_sbom": not_zstd, "format": "SPDX"}), 400, 3)
    assert_status(api.put(path, {"compressed_sbom": compress(CYCLONEDX), "format": "SPDX"}), 400, 3)
    assert_status(api.put(path, {"compressed_sbom": compress([1, 2]), "format": "SPDX"}), 400, 3)
    assert_status(api.put(path, {"compressed_sbom": compress(SPDX), "format": "XML"}), 400, 3)
    assert_status(
        api.put(path, {"compressed_sbom": compress(SPDX), "format": "SPDX", "name": "a/b"}), 400, 3
    )
    assert api.ok(api.get(path))["sboms"] == []


def test_download_link_cannot_be_forged(api: Api) -> None:
    bucket, fp, build_id = running_build(api)
    path = sboms_path(bucket, fp, build_id)
    api.ok(api.put(path, {"compressed_sbom": compress(SPDX), "format": "SPDX", "name": "doc"}))
    url = api.ok(api.get(f"{path}/doc"))["download_url"]
    forged = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
    assert_status(httpx.get(forged), 404, 5)
    expired = url.replace("expires=", "expires=1").split("&signature")[0] + "&signature=00"
    assert_status(httpx.get(expired), 404, 5)
    assert_status(api.get(f"{path}/missing"), 404, 5)


# --- decompression bombs and quotas ---------------------------------------------------------


def bomb(size: int, fmt: str = "CycloneDX") -> str:
    """A CycloneDX document of ``size`` bytes that zstd compresses to about a kilobyte."""
    head = b'{"bomFormat":"' + fmt.encode() + b'","pad":"'
    raw = head + b"a" * (size - len(head) - 2) + b'"}'
    return base64.b64encode(zstandard.ZstdCompressor(level=19).compress(raw)).decode()


def field_violations(body: dict[str, Any]) -> list[str]:
    return [
        v["field"]
        for d in body["details"]
        if d["@type"].endswith("google.rpc.BadRequest")
        for v in d["field_violations"]
    ]


def quota_subjects(body: dict[str, Any]) -> list[str]:
    return [
        v["subject"]
        for d in body["details"]
        if d["@type"] == "type.googleapis.com/google.rpc.QuotaFailure"
        for v in d["violations"]
    ]


def test_decompression_bomb_is_refused_and_nothing_stored(api: Api) -> None:
    bucket, fp, build_id = running_build(api)
    path = sboms_path(bucket, fp, build_id)
    compressed = bomb(MAX_SBOM_BYTES + 4 * 2**20)  # ~20 MiB from ~2 KB
    assert len(compressed) < 4096
    got = assert_status(
        api.put(path, {"compressed_sbom": compressed, "format": "CYCLONEDX"}), 400, 3
    )
    assert field_violations(got) == ["compressed_sbom"]
    assert str(MAX_SBOM_BYTES) in got["message"]
    assert api.ok(api.get(path))["sboms"] == []
    # exactly at the limit is accepted
    api.ok(api.put(path, {"compressed_sbom": bomb(MAX_SBOM_BYTES), "format": "CYCLONEDX"}))


@pytest.mark.slow
def test_decompression_stops_at_the_limit(api: Api, services: Services) -> None:
    """The decompressed output is never held beyond the limit (plus one chunk)."""
    services.sboms.limits = SbomLimits(document_bytes=2**20)
    bucket, fp, build_id = running_build(api)
    compressed = bomb(512 * 2**20)  # 512 MiB
    caller = api.tenant.caller()
    tracemalloc.start()
    try:
        with pytest.raises(ApiError) as refused:
            services.sboms.upload(
                caller,
                bucket,
                fp,
                build_id,
                compressed=compressed,
                sbom_format=SbomFormat.CYCLONEDX,
                name="bomb",
            )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert refused.value.code is Code.INVALID_ARGUMENT
    assert peak < 4 * 2**20, peak


def test_sboms_per_build_are_limited_in_number_and_size(api: Api, services: Services) -> None:
    services.sboms.limits = SbomLimits(
        document_bytes=2**20, per_build=3, build_bytes=2 * 2**20, project_bytes=2**30
    )
    bucket, fp, build_id = running_build(api)
    path = sboms_path(bucket, fp, build_id)
    for name in ("one", "two"):
        api.ok(
            api.put(
                path, {"compressed_sbom": bomb(2**20 - 100), "format": "CYCLONEDX", "name": name}
            )
        )
    # a third of ~1 MiB would take the build over 2 MiB
    over = api.put(path, {"compressed_sbom": bomb(2**20), "format": "CYCLONEDX", "name": "big"})
    assert quota_subjects(assert_status(over, 429, 8)) == [f"build/{build_id}/sbom-bytes"]
    api.ok(
        api.put(
            path, {"compressed_sbom": compress(CYCLONEDX), "format": "CYCLONEDX", "name": "three"}
        )
    )
    fourth = api.put(path, {"compressed_sbom": compress(SPDX), "format": "SPDX", "name": "four"})
    assert quota_subjects(assert_status(fourth, 429, 8)) == [f"build/{build_id}/sbom-count"]
    listed = api.ok(api.get(path))["sboms"]
    assert sorted(s["name"] for s in listed) == ["one", "three", "two"]


def test_sbom_bytes_per_project_are_limited(api: Api, services: Services) -> None:
    services.sboms.limits = SbomLimits(
        document_bytes=2**20, per_build=10, build_bytes=2**30, project_bytes=2 * 2**20 + 2**19
    )
    api.create_bucket("sbom-a")
    answers = []
    for i in range(3):  # three builds in three versions: only the project's total is full
        fp = f"fp-{i}"
        api.create_version("sbom-a", fp)
        build = api.create_build("sbom-a", fp, "null.a")
        api.ok(api.update_build("sbom-a", fp, build["id"], status="BUILD_RUNNING"))
        path = sboms_path("sbom-a", fp, build["id"])
        answers.append(
            api.put(path, {"compressed_sbom": bomb(2**20), "format": "CYCLONEDX", "name": "doc"})
        )
    assert [r.status_code for r in answers] == [200, 200, 429]
    body = assert_status(answers[2], 429, 8)
    assert quota_subjects(body) == [f"project/{api.tenant.project_id}/sbom-bytes"]
    assert api.ok(api.get(path))["sboms"] == []


# --- links never follow the Host header ------------------------------------------------------


def test_download_link_ignores_the_host_header(api: Api) -> None:
    bucket, fp, build_id = running_build(api)
    path = sboms_path(bucket, fp, build_id)
    api.ok(api.put(path, {"compressed_sbom": compress(SPDX), "format": "SPDX", "name": "doc"}))
    for host in ("evil.example", "evil.example:443", "127.0.0.1.evil.example"):
        got = api.http.get(api.prefix + f"{path}/doc", headers={**api.headers(), "Host": host})
        url = httpx.URL(api.ok(got)["download_url"])
        # the address the server listens on (this server has no public address configured)
        assert (url.scheme, url.host, url.port) == (
            httpx.URL(api.base_url).scheme,
            "127.0.0.1",
            httpx.URL(api.base_url).port,
        )
        assert httpx.get(str(url)).status_code == 200
