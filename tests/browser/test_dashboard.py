"""The dashboard in a real browser against a real server and worker (issue 5's checks)."""

from __future__ import annotations

import csv
import json
import time
import uuid
import zipfile
from pathlib import Path

import pytest
from playwright import sync_api as playwright_api

# Tiny jobs: a few seconds each on one CPU worker (2 epochs: these jobs need curves, not skill).
TINY = {
    "algo": "ppo",
    "model": "mlp",
    "env_id": "CartPole-v0",
    "num_envs": 4,
    "rollout_length": 32,
    "minibatches": 2,
    "epochs": 2,
}
BADGE = "document.querySelector('.title-row .badge')?.dataset.status"
POINTS = "Number(document.querySelector('.panel.main .chart')?.dataset.points)"


def wait_on_job_page(page, server, condition: str, timeout: float) -> None:  # type: ignore[no-untyped-def]
    """Wait for a JS `condition` on a job's page; on a timeout, say what the page, the API
    and the worker saw."""
    try:
        page.wait_for_function(condition, timeout=timeout * 1000)
    except playwright_api.TimeoutError:
        job_id = page.url.rsplit("/", 1)[1]
        job = server.client().get(f"/api/jobs/{job_id}").json()
        shown = page.evaluate(f"[{BADGE}, {POINTS}]")
        raise AssertionError(
            f"not true after {timeout} s: {condition}; the page shows status and points {shown}; "
            f"the API has {job}\n--- worker log ---\n{server.worker.log()[-4000:]}"
        ) from None


def wait_status(page, server, status: str, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    wait_on_job_page(page, server, f"{BADGE} === '{status}'", timeout)


def wait_points_above(page, server, n: int, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    wait_on_job_page(page, server, f"{POINTS} > {n}", timeout)


def succeeded(server, job_id: str) -> dict:  # type: ignore[no-untyped-def]
    job = server.wait_finished(job_id, timeout=120)
    assert job["status"] == "succeeded", job
    return job


def finished_group(server, body: dict) -> dict:  # type: ignore[no-untyped-def]
    """POST /api/groups, then wait until every job of the group has succeeded."""
    with server.client() as client:
        response = client.post("/api/groups", json=body)
    assert response.status_code == 201, response.text
    group = response.json()
    for job in group["jobs"]:
        succeeded(server, job["id"])
    return group


def test_missing_or_wrong_token_shows_how_to_get_one(page, page_errors, server) -> None:  # type: ignore[no-untyped-def]
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


def test_submit_from_form_watch_curve_grow_download_policy(signed_in, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page = signed_in
    name = f"form-{uuid.uuid4().hex[:6]}"
    page.click("text=New job")
    page.fill("#f-name", name)
    page.fill("#f-tags", "browser, form")
    page.select_option("#f-model", "mlp")
    page.select_option("#f-env_id", "CartPole-v0")
    page.fill("#f-total_steps", "100000")
    page.fill("#f-num_envs", "4")
    page.click("summary")
    page.fill("#f-rollout_length", "32")
    page.fill("#f-epochs", "2")
    page.select_option("#f-encoder", "none")  # a named choice: a select, not a number box
    page.click("button[type=submit]")

    page.wait_for_url("**/#/jobs/*")
    job_id = page.url.rsplit("/", 1)[1]
    # The curve gains points while the job runs: pushed over SSE, no reload.
    wait_status(page, server, "running")
    wait_points_above(page, server, 0)
    first = int(page.locator(".panel.main .chart").get_attribute("data-points"))
    wait_points_above(page, server, first)
    assert page.locator(".live").get_attribute("data-state") == "on"
    wait_status(page, server, "succeeded")
    job = succeeded(server, job_id)
    assert job["latest_metrics"]
    assert job["spec"]["encoder"] == "none"

    # Download the policy with the button: a zip with policy.onnx and its config.
    with page.expect_download() as info:
        page.click("[data-action=onnx]")
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    with zipfile.ZipFile(path) as archive:
        assert {"policy.onnx", "policy.json"} <= set(archive.namelist())
    with page.expect_download() as info:
        page.click("[data-action=csv]")
    assert info.value.suggested_filename.endswith(".csv")

    # The job is in the table with its final status.
    page.click("text=Jobs")
    row = page.locator("tr", has_text=name)
    row.wait_for()
    assert row.locator(".badge").get_attribute("data-status") == "succeeded"


def test_submit_form_shows_the_options_and_defaults_of_the_env(signed_in, server) -> None:  # type: ignore[no-untyped-def]
    page = signed_in
    page.goto(page.url.split("#")[0] + "#/submit")
    page.click("summary")
    shown = lambda name: page.locator(f"#f-{name}").is_visible()  # noqa: E731
    options = ("frame_stack", "repeat_action_probability", "episodic_life", "flicker")
    assert not any(shown(n) for n in options)  # CartPole takes none
    assert page.input_value("#f-learning_rate") == "0.002"
    assert shown("normalize_obs") and not page.is_checked("#f-normalize_obs")

    page.select_option("#f-env_id", "ALE/Pong-v5")
    assert all(shown(n) for n in options)
    # CleanRL's Atari settings, and the CNN as the only encoder.
    assert page.input_value("#f-learning_rate") == "0.00025"
    assert page.input_value("#f-num_envs") == "8" and page.input_value("#f-rollout_length") == "128"
    assert page.input_value("#f-frame_stack") == "4" and page.input_value("#f-encoder") == "cnn"
    assert page.is_checked("#f-clip_rewards")
    # Frames are scaled by the CNN; rewards may still be normalised.
    assert not shown("normalize_obs") and shown("normalize_reward")

    page.select_option("#f-env_id", "CueRecallPixels-v0")
    assert shown("flicker") and not shown("frame_stack")
    page.select_option("#f-env_id", "CartPoleMasked-v1")  # PPO normalises its observations
    assert page.is_checked("#f-normalize_obs")
    page.select_option("#f-env_id", "CartPole-v1")
    assert not any(shown(n) for n in options)
    assert page.input_value("#f-learning_rate") == "0.002" and page.input_value("#f-encoder") == "dense"
    assert not page.is_checked("#f-clip_rewards") and not page.is_checked("#f-normalize_obs")


def test_validation_errors_show_beside_the_field(signed_in, page_errors) -> None:  # type: ignore[no-untyped-def]
    page = signed_in
    page_errors.allow(r"status of 422")
    page.goto(page.url.split("#")[0] + "#/submit")
    page.click("summary")
    page.fill("#f-learning_rate", "5")
    page.fill("#f-gamma", "1.5")
    page.click("button[type=submit]")
    page.wait_for_function("document.querySelector('#e-learning_rate').textContent.length > 0")
    assert "less than or equal to 1" in page.locator("#e-learning_rate").text_content()
    assert "less than or equal to 1" in page.locator("#e-gamma").text_content()
    assert "#/submit" in page.url  # nothing was submitted


def test_submit_form_shows_and_sends_only_the_fields_of_the_algorithm(signed_in, server) -> None:  # type: ignore[no-untyped-def]
    page = signed_in
    page.goto(page.url.split("#")[0] + "#/submit")
    page.click("summary")
    shown = lambda name: page.locator(f"#f-{name}").is_visible()  # noqa: E731
    assert all(shown(n) for n in ("epochs", "clip_range", "target_kl", "vf_coef", "gae_lambda"))
    page.select_option("#f-env_id", "CartPoleMasked-v1")
    assert page.is_checked("#f-normalize_obs")  # PPO's default there, not A2C's or REINFORCE's
    page.select_option("#f-algo", "a2c")
    assert not page.is_checked("#f-normalize_obs")
    assert not any(shown(n) for n in ("epochs", "clip_range", "target_kl"))
    assert shown("vf_coef") and shown("gae_lambda")
    page.select_option("#f-algo", "reinforce")
    assert not any(shown(n) for n in ("epochs", "clip_range", "target_kl", "vf_coef", "gae_lambda"))
    assert shown("ent_coef") and shown("learning_rate")

    # The API refuses a field the algorithm ignores (422): this job is accepted.
    page.select_option("#f-model", "mlp")
    page.select_option("#f-env_id", "CartPole-v0")
    page.fill("#f-total_steps", "800")
    page.fill("#f-num_envs", "4")
    page.fill("#f-rollout_length", "50")
    page.click("button[type=submit]")
    page.wait_for_url("**/#/jobs/*")
    job = succeeded(server, page.url.rsplit("/", 1)[1])
    assert job["spec"]["algo"] == "reinforce" and job["spec"]["normalize_obs"] is False
    assert not {"epochs", "clip_range", "vf_coef", "gae_lambda"} & set(job["spec"])


def test_cancel_a_running_job_from_its_page(signed_in, server) -> None:  # type: ignore[no-untyped-def]
    page = signed_in
    with server.client() as client:
        spec = {**TINY, "env_id": "CartPole-v1", "total_steps": 5_000_000}
        job = client.post("/api/jobs", json={"spec": spec, "name": "to-cancel"}).json()
    page.goto(f"{server.url}/#/jobs/{job['id']}")
    wait_status(page, server, "running")
    wait_points_above(page, server, 0)
    page.click("[data-action=cancel]")
    wait_status(page, server, "cancelled", timeout=20)
    assert page.locator("[data-action=retry]").is_enabled()


def test_extend_and_fork_from_the_job_page_and_see_the_fork_branch_off(signed_in, server) -> None:  # type: ignore[no-untyped-def]
    page = signed_in
    with server.client() as client:
        parent = client.post("/api/jobs", json={"spec": {**TINY, "total_steps": 1280}}).json()
    succeeded(server, parent["id"])
    page.goto(f"{server.url}/#/jobs/{parent['id']}")
    wait_status(page, server, "succeeded")
    wait_points_above(page, server, 0)
    # The default spec evaluated greedily at the end: its return is drawn beside training's.
    assert "eval (greedy)" in page.locator(".panel.main").text_content()
    first = int(page.locator(".panel.main .chart").get_attribute("data-points"))

    # Extend: the same job trains on and its curve grows on the same page.
    page.once("dialog", lambda dialog: dialog.accept("2560"))
    page.click("[data-action=extend]")
    page.wait_for_function(f"{BADGE} !== 'succeeded'")
    wait_status(page, server, "succeeded")
    wait_points_above(page, server, first)
    assert succeeded(server, parent["id"])["step"] == 2560

    # Fork: a new job, linked to its parent, that starts at the parent's step.
    page.once("dialog", lambda dialog: dialog.accept("learning_rate=0.001 total_steps=3840"))
    page.click("[data-action=fork]")
    page.wait_for_function(f"!location.hash.endsWith('{parent['id']}')")
    child_id = page.url.rsplit("/", 1)[1]
    link = page.get_by_test_id("parent-link")
    assert link.get_attribute("href") == f"#/jobs/{parent['id']}"
    assert "at step 2560" in page.locator(".meta").text_content()
    wait_status(page, server, "succeeded")
    child = succeeded(server, child_id)
    lineage = (child["parent_id"], child["forked_at_step"], child["spec"]["learning_rate"])
    assert lineage == (parent["id"], 2560, 0.001)

    # Compared with its parent, the fork is its own variant and says whose branch it is.
    page.click("text=compare with it")
    legend = page.get_by_test_id("legend")
    legend.get_by_text(f"fork of {parent['id'][:8]} at 2560").wait_for()
    assert legend.locator("li").count() == 2
    # Drawn as a branch: the fork's curve starts on the parent's, at a grid point of its own.
    data = page.evaluate("document.querySelector('.panel.main .chart').curveData")
    (base,) = [c for c in data["curves"] if "fork of" not in c["label"]]
    (fork,) = [c for c in data["curves"] if "fork of" in c["label"]]
    start = next(i for i, v in enumerate(fork["center"]) if v is not None)
    assert 0 < start < len(data["grid"]) - 1
    assert data["grid"][start] <= 2560
    assert base["center"][start] == pytest.approx(fork["center"][start], rel=1e-5)
    assert all(v is None for v in base["center"][start + 1 :])  # the parent stops where the fork goes on


def test_compare_page_probes_the_memory_of_each_model_side_by_side(signed_in, server) -> None:  # type: ignore[no-untyped-def]
    page = signed_in
    body = {
        "spec": {**TINY, "env_id": "CartPoleMasked-v1", "total_steps": 2_000},
        "seeds": [0],
        "models": ["mlp", "gru"],
    }
    group = finished_group(server, body)
    page.goto(f"{server.url}/#/compare?group={group['id']}")
    panel = page.get_by_test_id("probe-compare")
    panel.get_by_role("button", name="Probe each model").click()
    # Both probes run on the worker; then each model's column holds a score for both velocities.
    cells = "[...document.querySelectorAll('[data-testid=probe-compare-table] td[data-score]')]"
    page.wait_for_function(f"{cells}.length === 4", timeout=90_000)
    headers = panel.locator("thead th[data-variant]").all_text_contents()
    assert len(headers) == 2 and any("gru" in h for h in headers) and any("mlp" in h for h in headers), (
        headers
    )
    rows = panel.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.variable)")
    assert rows == ["cart_velocity", "pole_angular_velocity"], rows
    assert panel.get_by_role("button", name="Probe each model").is_disabled()


def test_compare_page_shows_bands_for_a_three_seed_group(signed_in, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page = signed_in
    shots = tmp_path  # the README's screenshots come from docs/screenshots.py
    body = {
        "spec": {**TINY, "total_steps": 12_000},
        "seeds": [0, 1, 2],
        "models": ["mlp", "gru"],
        "name": "mlp vs gru",
    }
    group = finished_group(server, body)
    page.goto(f"{server.url}/#/compare?group={group['id']}")
    legend = page.get_by_test_id("legend")
    legend.get_by_text("n=3").first.wait_for()
    assert page.locator("main h1").text_content() == "mlp vs gru"  # the group's name
    assert legend.locator("li:not(.note)").count() == 2
    assert "95% bootstrap CI of the mean at each step, clipped" in legend.text_content()
    chart = page.locator(".panel.main .chart")
    page.wait_for_function("document.querySelector('.panel.main .chart').dataset.band === 'bootstrap'")
    assert chart.get_attribute("data-bands") == "2"
    assert int(chart.get_attribute("data-points")) > 100
    assert_bands_within_seeds(page, ".panel.main .chart", curves=2, seeds=3)
    # The final scores' intervals: the same method, from the API.
    finals = "[...document.querySelectorAll('td[data-score=final]')]"
    page.wait_for_function(f"{finals}.length === 2 && {finals}.every(td => td.textContent.includes('['))")
    page.select_option("#c-band", "t95")  # the t-interval, clipped the same way
    page.wait_for_function("document.querySelector('.panel.main .chart').dataset.band === 't95'")
    assert_bands_within_seeds(page, ".panel.main .chart", curves=2, seeds=3)

    page.select_option("#c-band", "minmax")
    page.wait_for_function("document.querySelector('[data-testid=legend]').textContent.includes('min–max')")
    page.select_option("#c-x", "wall")
    page.wait_for_function("location.hash.includes('x=wall')")
    assert int(chart.get_attribute("data-points")) > 100
    page.select_option("#c-band", "bootstrap")
    page.select_option("#c-x", "step")
    page.wait_for_timeout(300)
    page.screenshot(path=str(shots / "compare.png"), full_page=True)

    # A finished job of the group: curves, spec, history.
    page.locator("table.jobs a", has_text="seed 1").first.click()
    wait_points_above(page, server, 0)
    page.wait_for_timeout(300)
    page.screenshot(path=str(shots / "job.png"), full_page=True)
    assert (shots / "job.png").stat().st_size > 0


def assert_bands_within_seeds(page, chart: str, curves: int, seeds: int) -> None:  # type: ignore[no-untyped-def]
    """The drawn band (the chart's `curveData`) lies within its seeds' min and max at every point."""
    data = page.evaluate(f"document.querySelector('{chart}').curveData")
    assert len(data["curves"]) == curves
    checked = 0
    for curve in data["curves"]:
        assert curve["n"] == seeds and len(curve["seeds"]) == seeds
        for i, (low, center, high) in enumerate(
            zip(curve["lower"], curve["center"], curve["upper"], strict=True)
        ):
            seen = [s[i] for s in curve["seeds"] if s[i] is not None]
            if not seen:
                assert low is None and high is None
                continue
            assert min(seen) <= low <= high <= max(seen), (i, seen, low, high)
            ulps = 1e-12 * max(1.0, abs(center))  # a mean of equal values may differ by a rounding
            assert low - ulps <= center <= high + ulps, (i, seen, low, center, high)
            checked += 1
    assert checked > 100


def test_study_page_fills_live_and_exports(signed_in, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A 2 x 2 x 3 study: cells gain scores without a reload, profile and curves drawn, CSV of 12 runs."""
    page = signed_in
    body = {
        "name": "browser study",
        "spec": {**TINY, "total_steps": 1500},
        "axes": {"model": ["mlp", "gru"], "ent_coef": [0.0, 0.01]},
        "seeds": [0, 1, 2],
    }
    with server.client() as client:
        response = client.post("/api/studies", json=body)
    assert response.status_code == 201, response.text
    study = response.json()
    page.click("text=Studies")
    page.locator(f"tr[data-study='{study['id']}'] a").click()
    rows = page.locator("table.cells tbody tr[data-cell]")
    rows.first.wait_for()
    assert rows.count() == 4
    headers = page.locator("table.cells thead th").all_text_contents()
    assert "model" in headers and "ent_coef" in headers
    page.evaluate("window.__samePage = true")  # gone if the page reloads
    scored = (
        "[...document.querySelectorAll('table.cells tr[data-cell]')].filter(r => r.dataset.n === '3').length"
    )
    assert page.evaluate(scored) < 4  # the jobs run one at a time: the last cell cannot be done yet
    page.wait_for_function(f"{scored} === 4", timeout=120_000)
    page.wait_for_function(
        "document.querySelector('.page-head .badge')?.dataset.status === 'finished'", timeout=30_000
    )
    assert page.evaluate("window.__samePage") is True
    scores = page.locator("table.cells td[data-score=iqm]").all_text_contents()
    assert all("[" in s for s in scores), scores
    assert page.locator("table.cells tr.best").count() == 1  # one env: one best cell
    assert "CartPole-v0" in page.get_by_test_id("best").text_content()

    # The performance profile: a line per cell (none ticked) at 51 thresholds.
    profile = page.get_by_test_id("profile").locator(".chart")
    page.wait_for_function("document.querySelector('[data-testid=profile] .chart').dataset.lines === '4'")
    assert profile.get_attribute("data-points") == "51"
    # Curves: every cell of a small study, then only the ticked ones, with bands within the seeds.
    curves = "[data-testid=curves] .chart"
    page.wait_for_function(f"document.querySelector('{curves}').curveData?.curves.length === 4")
    page.locator("table.cells tr[data-cell='0'] input[type=checkbox]").check()
    page.locator("table.cells tr[data-cell='3'] input[type=checkbox]").check()
    # Each run's last points arrive a moment after its status: wait for every seed's curve.
    drawn = f"document.querySelector('{curves}').curveData?.curves"
    page.wait_for_function(f"{drawn}?.length === 2 && {drawn}.every(c => c.n === 3)")
    page.wait_for_function("document.querySelector('[data-testid=profile] .chart').dataset.lines === '2'")
    assert_bands_within_seeds(page, curves, curves=2, seeds=3)

    # Sort by IQM: the best cell first.
    page.click("button[data-sort=iqm]")
    assert rows.first.get_attribute("class") == "best"

    with page.expect_download() as info:
        page.click("[data-action=csv]")
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    with path.open() as f:
        table = list(csv.DictReader(f))
    assert len(table) == 12
    assert {(r["model"], r["ent_coef"], r["seed"]) for r in table} == {
        (m, e, s) for m in ("mlp", "gru") for e in ("0.0", "0.01") for s in ("0", "1", "2")
    }
    assert all(r["status"] == "succeeded" and r["final_score"] for r in table)


def test_jobs_table_status_is_pushed_not_polled(signed_in, server) -> None:  # type: ignore[no-untyped-def]
    """The table learns of status changes over GET /api/events; it does not poll GET /api/jobs."""
    page = signed_in
    lists: list[float] = []
    is_list = lambda r: r.method == "GET" and "/api/jobs?" in r.url  # noqa: E731
    page.on("request", lambda r: is_list(r) and lists.append(time.monotonic()))
    page.wait_for_function("document.querySelector('.page-head .live')?.dataset.state === 'on'")
    page.wait_for_timeout(500)
    before = len(lists)
    with server.client() as client:
        job = client.post(
            "/api/jobs", json={"spec": {**TINY, "total_steps": 40_000}, "name": "pushed"}
        ).json()
    badge = f"document.querySelector('tr[data-job=\"{job['id']}\"] .badge')?.dataset.status"
    started = time.monotonic()
    page.wait_for_function(f"{badge} === 'running'", timeout=30_000)
    bar = f"Number(document.querySelector('tr[data-job=\"{job['id']}\"] [role=progressbar]')?.ariaValueNow)"
    page.wait_for_function(f"{badge} === 'running' && {bar} > 0 && {bar} < 100", timeout=30_000)
    page.wait_for_function(f"{badge} === 'succeeded'", timeout=90_000)
    elapsed = time.monotonic() - started
    # One list request to show the new row; none for its status changes or progress
    # (the old table polled every second while a job was active).
    fetched = len(lists) - before
    assert elapsed > 2 and fetched <= 1, f"{fetched} GET /api/jobs in {elapsed:.1f} s"
    assert page.locator(f"tr[data-job='{job['id']}'] .progress-text").text_content().startswith("100%")


@pytest.mark.parametrize("path", ["#/", "#/submit", "#/compare", "#/studies"])
def test_phone_width_has_no_horizontal_scroll(signed_in, path: str) -> None:  # type: ignore[no-untyped-def]
    page = signed_in
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(page.url.split("#")[0] + path)
    page.wait_for_selector("main h1")
    page.wait_for_timeout(300)
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0


def test_100k_point_curve_renders_under_100ms(signed_in, server) -> None:  # type: ignore[no-untyped-def]
    """The worst case: the server sends all 100k points (it normally sends about 2000 per key)."""
    page = signed_in
    with server.client() as client:
        job = client.post("/api/jobs", json={"spec": {**TINY, "total_steps": 3000}}).json()
    succeeded(server, job["id"])
    n = 100_000
    steps = list(range(0, n * 100, 100))
    values = [200 * (1 - 0.99 ** (i / 100)) + (i % 7) for i in range(n)]
    series = {"charts/episodic_return": {"steps": steps, "values": values}}
    body = json.dumps(
        {"job_id": job["id"], "keys": list(series), "total_points": n, "downsampled": False}
        | {"last_step": steps[-1], "series": series}
    )
    page.route(
        "**/api/jobs/*/metrics*", lambda route: route.fulfill(content_type="application/json", body=body)
    )
    page.goto(f"{server.url}/#/jobs/{job['id']}")
    chart = page.locator(".panel.main .chart")
    page.wait_for_function(f"{POINTS} === {n} && document.querySelector('.panel.main .chart').dataset.drawMs")
    draw_ms = float(chart.get_attribute("data-draw-ms"))
    print(f"\n100k-point curve drawn in {draw_ms:.1f} ms")
    assert draw_ms < 100


def test_play_an_episode_and_scrub_it(signed_in, server) -> None:  # type: ignore[no-untyped-def]
    page = signed_in
    with server.client() as client:
        job = client.post(
            "/api/jobs", json={"spec": {**TINY, "total_steps": 2000}, "name": "to-replay"}
        ).json()
    succeeded(server, job["id"])
    page.goto(f"{server.url}/#/jobs/{job['id']}")
    wait_status(page, server, "succeeded")
    # CartPole-v0 hides nothing: there is no memory to inspect.
    assert page.locator("[data-action=probe]").count() == 0
    page.click("[data-action=replay]")
    page.wait_for_selector("[data-testid=heatmap]", timeout=60_000)
    steps = int(page.get_attribute("[data-testid=heatmap]", "data-steps") or 0)
    assert steps > 2
    assert int(page.get_attribute("[data-testid=heatmap]", "data-units") or 0) > 0
    # The video arrives as a blob (fetched with the token header).
    page.wait_for_function(
        "document.querySelector('[data-testid=replay-video]').src.startsWith('blob:')", timeout=20_000
    )
    cursor = "[data-testid=track-hidden-cursor]"
    before = page.locator(cursor).evaluate("el => el.style.left")
    assert page.text_content("[data-testid=frame-index]") == f"step 1 / {steps}"
    slider = page.locator("[data-testid=replay-slider]")
    target = steps // 2
    slider.evaluate(
        "(el, v) => { el.value = String(v); el.dispatchEvent(new Event('input', { bubbles: true })); }",
        target,
    )
    assert page.text_content("[data-testid=frame-index]") == f"step {target + 1} / {steps}"
    after = page.locator(cursor).evaluate("el => el.style.left")
    assert after != before and float(after.rstrip("%")) == pytest.approx(100 * (target + 0.5) / steps)
    # Every track's cursor moved together.
    lefts = page.eval_on_selector_all(".replay-cursor", "els => els.map((el) => el.style.left)")
    assert len(lefts) >= 3 and set(lefts) == {after}
    assert page.locator("[data-step]").get_attribute("data-step") == str(target)
    # Playing moves the cursor on with the video.
    page.click("[data-testid=replay-play]")
    page.wait_for_function(
        f"document.querySelector('[data-testid=frame-index]').textContent !== 'step {target + 1} / {steps}'",
        timeout=10_000,
    )
