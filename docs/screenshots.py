"""Make the README's screenshots from a real experiment: does memory help on masked CartPole?

    .venv/bin/python docs/screenshots.py            # about 6 minutes on 2 CPUs

Starts `rlserve up` (API and one worker) on a free port with a fresh data directory,
submits one group (PPO on CartPoleMasked-v1, mlp / gru / lstm, three seeds each),
waits for it, and photographs the compare page and one job page with Debian's chromium
into docs/compare.png and docs/job.png.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

DOCS = Path(__file__).resolve().parent
RLSERVE = Path(sys.executable).with_name("rlserve")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
GROUP = {
    "name": "Does memory help on masked CartPole?",
    "spec": {"algo": "ppo", "model": "gru", "env_id": "CartPoleMasked-v1", "total_steps": 300_000},
    "models": ["mlp", "gru", "lstm"],
    "seeds": [0, 1, 2],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_group(client: httpx.Client, group_id: str, timeout: float = 1800) -> dict:
    """Poll the group until every job has finished; print progress meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        group = client.get(f"/api/groups/{group_id}").raise_for_status().json()
        states = [job["status"] for job in group["jobs"]]
        print(f"\r{states.count('succeeded')}/{len(states)} jobs done", end="", flush=True)
        if any(s in ("failed", "cancelled") for s in states):
            raise SystemExit(f"\na job did not succeed: {states}")
        if all(s == "succeeded" for s in states):
            print()
            return group
        time.sleep(2)
    raise SystemExit("\ntimed out")


def main() -> None:
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
            client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
            for _ in range(100):
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            group = client.post("/api/groups", json=GROUP).raise_for_status().json()
            group = wait_for_group(client, group["id"])
            job = next(j for j in group["jobs"] if j["spec"]["model"] == "gru" and j["spec"]["seed"] == 0)
            shoot(url, token, group["id"], job["id"])
        finally:
            server.terminate()
            server.wait(timeout=60)


def shoot(url: str, token: str, group_id: str, job_id: str) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{url}/?token={token}#/compare?group={group_id}")
        page.get_by_test_id("legend").get_by_text("n=3").first.wait_for()
        page.wait_for_timeout(500)
        page.screenshot(path=str(DOCS / "compare.png"), full_page=True)
        page.goto(f"{url}/#/jobs/{job_id}")
        page.wait_for_function("Number(document.querySelector('.panel.main .chart')?.dataset.points) > 0")
        page.wait_for_timeout(500)
        page.screenshot(path=str(DOCS / "job.png"), full_page=True)
        browser.close()
    print(f"wrote {DOCS / 'compare.png'} and {DOCS / 'job.png'}")


if __name__ == "__main__":
    main()
