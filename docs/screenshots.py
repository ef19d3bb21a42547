"""Make the README's screenshots from a real experiment: does memory help on masked CartPole,
and at which learning rate?

    .venv/bin/python docs/screenshots.py            # about 10 minutes on 2 free CPUs
    .venv/bin/python docs/screenshots.py --quick    # tiny jobs, pictures into a temporary folder

Starts `rlserve up` (API and one worker) on a free port with a fresh data directory, submits
the study in examples/study-memory-cartpole.yaml (PPO on CartPoleMasked-v1, mlp / gru / lstm x
two learning rates x three seeds), waits for it, and photographs with Debian's chromium the
study page (docs/study.png), the compare page of the three models at one learning rate
(docs/compare.png) and one job page (docs/job.png).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from playwright.sync_api import sync_playwright

DOCS = Path(__file__).resolve().parent
STUDY_FILE = DOCS.parent / "examples" / "study-memory-cartpole.yaml"
RLSERVE = Path(sys.executable).with_name("rlserve")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
QUICK = {"total_steps": 8192, "num_envs": 4, "rollout_length": 32, "epochs": 2}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_study(client: httpx.Client, study_id: str, timeout: float = 3600) -> dict[str, Any]:
    """Poll the study until every job has finished; print progress meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        study = client.get(f"/api/studies/{study_id}").raise_for_status().json()
        jobs = study["progress"]["jobs"]
        print(f"\r{jobs['succeeded']}/{study['jobs_count']} jobs done", end="", flush=True)
        if jobs["failed"] or jobs["cancelled"]:
            raise SystemExit(f"\na job did not succeed: {jobs}")
        if study["status"] == "finished":
            print()
            return study
        time.sleep(2)
    raise SystemExit("\ntimed out")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny jobs; pictures into a temporary folder")
    args = parser.parse_args()
    study_body = yaml.safe_load(STUDY_FILE.read_text())
    out = DOCS
    if args.quick:
        study_body["spec"] = {**study_body["spec"], **QUICK}
        out = Path(tempfile.mkdtemp(prefix="rlserve-shots-"))
    with tempfile.TemporaryDirectory() as data_dir:
        env = {**os.environ, "RLSERVE_DATA_DIR": data_dir}
        token = subprocess.run(
            [RLSERVE, "token", "create", "docs"], env=env, check=True, capture_output=True, text=True
        ).stdout.strip()
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [RLSERVE, "up", "--port", str(port)],
            env={**env, "RLSERVE_TOKEN": token},
            stdout=subprocess.DEVNULL,
        )
        try:
            client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
            for _ in range(100):
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            study = client.post("/api/studies", json=study_body).raise_for_status().json()
            study = wait_for_study(client, study["id"])
            shoot(url, token, study, out)
        finally:
            server.terminate()
            server.wait(timeout=60)


def shoot(url: str, token: str, study: dict[str, Any], out: Path) -> None:
    """The study page, the compare page of the best cell's learning rate, and a gru job's page."""
    best = study["cells"][study["best"][0]["cell"]]
    rate = best["values"]["learning_rate"]
    cells = [c for c in study["cells"] if c["values"]["learning_rate"] == rate]
    jobs = ",".join(r["job_id"] for c in cells for r in c["runs"])
    gru = next(c for c in cells if c["values"]["model"] == "gru")
    job_id = next(r["job_id"] for r in gru["runs"] if r["seed"] == 0)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{url}/?token={token}#/studies/{study['id']}")
        chart = "document.querySelector('[data-testid={}] .chart')?.dataset"
        page.wait_for_function(f"{chart.format('curves')}.band")
        page.wait_for_function(f"Number({chart.format('profile')}.lines) > 0")
        page.click("button[data-sort=iqm]")  # best first
        for cell in cells:  # the curves and profiles of the three models at that learning rate
            page.locator(f"tr[data-cell='{cell['index']}'] input[type=checkbox]").check()
        page.wait_for_function(f"{chart.format('profile')}.lines === '{len(cells)}'")
        page.wait_for_function(
            f"document.querySelector('[data-testid=curves] .chart').curveData?.curves.length === {len(cells)}"
        )
        page.wait_for_timeout(500)
        page.screenshot(path=str(out / "study.png"), full_page=True)
        page.goto(f"{url}/#/compare?jobs={jobs}")
        page.get_by_test_id("legend").get_by_text("n=3").first.wait_for()
        page.wait_for_function("document.querySelector('.panel.main .chart')?.dataset.band === 'bootstrap'")
        page.wait_for_timeout(500)
        page.screenshot(path=str(out / "compare.png"), full_page=True)
        page.goto(f"{url}/#/jobs/{job_id}")
        page.wait_for_function("Number(document.querySelector('.panel.main .chart')?.dataset.points) > 0")
        page.wait_for_timeout(500)
        page.screenshot(path=str(out / "job.png"), full_page=True)
        browser.close()
    print(f"wrote study.png, compare.png and job.png into {out}")


if __name__ == "__main__":
    main()
