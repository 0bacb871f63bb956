"""Parallel DONE updates over HTTP: every completion numbered once, no request fails."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.support.factories import Api
from tests.support.wire import ok


def test_parallel_done_updates_over_http(api: Api) -> None:
    api.create_bucket("golden")
    plan: list[tuple[str, str]] = []
    for v in range(12):
        fp = f"fp-{v:02d}"
        api.create_version("golden", fp)
        for c in ("null.a", "null.b"):
            plan.append((fp, api.create_build("golden", fp, c)["id"]))

    def finish(item: tuple[int, tuple[str, str]]) -> httpx.Response:
        i, (fp, build_id) = item
        with httpx.Client(base_url=api.base_url, timeout=60) as http:
            return http.patch(
                f"{api.prefix}/buckets/golden/versions/{fp}/builds/{build_id}",
                json={
                    "artifacts": [{"external_identifier": f"ami-{i}", "region": "r"}],
                    "metadata": {"packer": {"version": "1.16.0"}, "cicd": None, "vcs": None},
                    "platform": "aws",
                    "status": "BUILD_DONE",
                },
                headers=api.headers(),
            )

    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(finish, enumerate(plan)))
    for response in responses:
        assert ok(response, "PackerService_UpdateBuild")["build"]["status"] == "BUILD_DONE"

    versions = ok(
        api.get("/buckets/golden/versions?sorting.order_by=name"), "PackerService_ListVersions"
    )["versions"]
    assert [v["name"] for v in versions] == [f"v{n}" for n in range(1, 13)]
    history = ok(
        api.get("/buckets/golden/channels/latest/history?pagination.page_size=100"),
        "PackerService_ListChannelAssignmentHistory",
    )
    assert history["count"] == 12
    newest_first = [h["version"]["name"] for h in history["history"]]
    assert newest_first == [f"v{n}" for n in range(12, 0, -1)]
    bucket = ok(api.get("/buckets/golden"), "PackerService_GetBucket")["bucket"]
    assert bucket["latest_version"]["name"] == "v12"
