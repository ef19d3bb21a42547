"""The dashboard in a real browser against a real server and worker (issue 5's checks)."""

from __future__ import annotations

import json
import time
import uuid
import zipfile
from pathlib import Path

import pytest

Server = object  # conftest.Server: .url, .token, .client()


DOCS = Path(__file__).resolve().parents[2] / "docs"
# Tiny jobs: a few seconds each on one CPU worker.
TINY = {"algo": "ppo", "model": "mlp", "env_id": "CartPole-v0", "num_envs": 4, "rollout_length": 32, "minibatches": 2}


def wait_for(server: Server, job_id: str, statuses: set[str], timeout: float = 90) -> dict:
    with server.client() as client:
        deadline = time.monotonic() + timeout
        while True:
            job = client.get(f"/api/jobs/{job_id}").json()
            if job["status"] in statuses:
                return job
            assert time.monotonic() < deadline, f"job {job_id} still {job['status']}"
            time.sleep(0.3)


def status_of(page) -> str:  # type: ignore[no-untyped-def]
    return page.locator(".title-row .badge").get_attribute("data-status")


def test_missing_or_wrong_token_shows_how_to_get_one(page, page_errors, server: Server) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{server.url}/")
    page.get_by_role("heading", name="Sign in to rlserve").wait_for()
    assert "rlserve token create NAME" in page.content()

    page_errors.allow(r"status of 401")
    page.goto(f"{server.url}/?token=not-a-token#/")
    page.get_by_role("heading", name="This token was not accepted").wait_for()
    assert "token=" not in page.url  # taken out of the address bar

    page.fill("#token", server.token)
    page.click("text=Open dashboard")
    page.wait_for_selector("table.jobs")


def test_submit_from_form_watch_curve_grow_download_policy(signed_in, server: Server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page = signed_in
    name = f"form-{uuid.uuid4().hex[:6]}"
    page.click("text=New job")
    page.fill("#f-name", name)
    page.fill("#f-tags", "browser, form")
    page.select_option("#f-model", "mlp")
    page.select_option("#f-env_id", "CartPole-v0")
    page.fill("#f-total_steps", "30000")
    page.fill("#f-num_envs", "4")
    page.click("summary")
    page.fill("#f-rollout_length", "32")
    page.click("button[type=submit]")

    page.wait_for_url("**/#/jobs/*")
    job_id = page.url.rsplit("/", 1)[1]
    main_chart = page.locator(".panel.main .chart")
    # The curve gains points while the job runs: pushed over SSE, no reload.
    page.wait_for_function("document.querySelector('.title-row .badge')?.dataset.status === 'running'")
    page.wait_for_function("Number(document.querySelector('.panel.main .chart')?.dataset.points) > 0")
    first = int(main_chart.get_attribute("data-points"))
    page.wait_for_function(
        f"Number(document.querySelector('.panel.main .chart')?.dataset.points) > {first}", timeout=30_000
    )
    assert page.locator(".live").get_attribute("data-state") == "on"
    page.wait_for_function("document.querySelector('.title-row .badge')?.dataset.status === 'succeeded'", timeout=60_000)
    final = wait_for(server, job_id, {"succeeded"})
    assert int(main_chart.get_attribute("data-points")) >= first

    # Download the policy with the button: a zip with policy.onnx and its config.
    with page.expect_download() as info:
        page.click("[data-action=onnx]")
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    assert path.suffix == ".zip"
    with zipfile.ZipFile(path) as archive:
        assert {"policy.onnx", "policy.json"} <= set(archive.namelist())
    with page.expect_download() as info:
        page.click("[data-action=csv]")
    assert info.value.suggested_filename.endswith(".csv")

    # The job is in the table with its final status and return.
    page.click("text=Jobs")
    row = page.locator("tr", has_text=name)
    row.wait_for()
    assert row.locator(".badge").get_attribute("data-status") == "succeeded"
    assert final["latest_metrics"]


def test_validation_errors_show_beside_the_field(signed_in, page_errors) -> None:  # type: ignore[no-untyped-def]
    page = signed_in
    page_errors.allow(r"status of 422")
    page.goto(page.url.split("#")[0] + "#/submit")
    page.click("summary")
    page.fill("#f-learning_rate", "5")
    page.fill("#f-gamma", "1.5")
    page.click("button[type=submit]")
    page.locator("#e-learning_rate").wait_for()
    page.wait_for_function("document.querySelector('#e-learning_rate').textContent.length > 0")
    assert "less than or equal to 1" in page.locator("#e-learning_rate").text_content()
    assert "less than or equal to 1" in page.locator("#e-gamma").text_content()
    assert "#/submit" in page.url  # nothing was submitted


def test_cancel_a_running_job_from_its_page(signed_in, server: Server) -> None:  # type: ignore[no-untyped-def]
    page = signed_in
    with server.client() as client:
        spec = {**TINY, "env_id": "CartPole-v1", "total_steps": 5_000_000}
        job = client.post("/api/jobs", json={"spec": spec, "name": "to-cancel"}).json()
    page.goto(f"{server.url}/#/jobs/{job['id']}")
    page.wait_for_function("document.querySelector('.title-row .badge')?.dataset.status === 'running'", timeout=60_000)
    page.wait_for_function("Number(document.querySelector('.panel.main .chart')?.dataset.points) > 0")
    page.click("[data-action=cancel]")
    page.wait_for_function("document.querySelector('.title-row .badge')?.dataset.status === 'cancelled'", timeout=20_000)
    assert page.locator("[data-action=retry]").is_enabled()


def test_compare_page_shows_bands_for_a_three_seed_group(signed_in, server: Server) -> None:  # type: ignore[no-untyped-def]
    page = signed_in
    with server.client() as client:
        body = {"spec": {**TINY, "total_steps": 12_000}, "seeds": [0, 1, 2], "models": ["mlp", "gru"], "name": "mlp vs gru"}
        response = client.post("/api/groups", json=body)
        assert response.status_code == 201, response.text
        group = response.json()
    for job in group["jobs"]:
        wait_for(server, job["id"], {"succeeded"})
    page.goto(f"{server.url}/#/compare?group={group['id']}")
    legend = page.get_by_test_id("legend")
    legend.get_by_text("n=3").first.wait_for()
    assert legend.locator("li").count() == 2
    assert "95% t-interval" in legend.text_content()
    chart = page.locator(".panel.main .chart")
    assert chart.get_attribute("data-bands") == "2"
    assert int(chart.get_attribute("data-points")) > 100

    page.select_option("#c-band", "minmax")
    page.wait_for_function("document.querySelector('[data-testid=legend]').textContent.includes('min–max')")
    page.select_option("#c-x", "wall")
    page.wait_for_function("location.hash.includes('x=wall')")
    assert int(chart.get_attribute("data-points")) > 100
    page.select_option("#c-band", "t95")
    page.select_option("#c-x", "step")
    page.wait_for_timeout(300)
    page.screenshot(path=str(DOCS / "compare.png"), full_page=True)

    # A job page of the group, finished: curves, spec, history.
    page.locator("table.jobs a", has_text="seed 1").first.click()
    page.wait_for_function("Number(document.querySelector('.panel.main .chart')?.dataset.points) > 0")
    page.wait_for_timeout(300)
    page.screenshot(path=str(DOCS / "job.png"), full_page=True)


@pytest.mark.parametrize("path", ["#/", "#/submit", "#/compare"])
def test_phone_width_has_no_horizontal_scroll(signed_in, path: str) -> None:  # type: ignore[no-untyped-def]
    page = signed_in
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(page.url.split("#")[0] + path)
    page.wait_for_selector("main h1")
    page.wait_for_timeout(300)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0


def test_100k_point_curve_renders_under_100ms(signed_in, server: Server) -> None:  # type: ignore[no-untyped-def]
    """The worst case: the server sends all 100k points (it normally sends ~2000 per key)."""
    page = signed_in
    with server.client() as client:
        job = client.post("/api/jobs", json={"spec": {**TINY, "total_steps": 3000}, "name": "render-bench"}).json()
    wait_for(server, job["id"], {"succeeded"})
    n = 100_000
    steps = list(range(0, n * 100, 100))
    values = [200 * (1 - 0.99 ** (i / 100)) + (i % 7) for i in range(n)]
    body = {
        "job_id": job["id"],
        "keys": ["charts/episodic_return"],
        "total_points": n,
        "downsampled": False,
        "last_step": steps[-1],
        "series": {"charts/episodic_return": {"steps": steps, "values": values}},
    }
    page.route("**/api/jobs/*/metrics*", lambda route: route.fulfill(content_type="application/json", body=json.dumps(body)))
    page.goto(f"{server.url}/#/jobs/{job['id']}")
    page.wait_for_function(f"document.querySelector('.panel.main .chart')?.dataset.points === '{n}'")
    page.wait_for_function("document.querySelector('.panel.main .chart')?.dataset.drawMs !== undefined")
    draw_ms = float(page.locator(".panel.main .chart").get_attribute("data-draw-ms"))
    print(f"\n100k-point curve drawn in {draw_ms:.1f} ms")
    assert draw_ms < 100
