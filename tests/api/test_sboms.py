"""SBOM upload, listing and token-less download links."""

from __future__ import annotations

import base64

import httpx
import orjson
import zstandard

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
