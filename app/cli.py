"""The `rlserve` command: `train`, `eval`, `up`, `worker`, `submit`, `extend`, `fork`, `study`, `token ..."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Annotated, Any

import typer

main = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Train RL agents with memory, as a service."
)
token_app = typer.Typer(no_args_is_help=True, help="API tokens.")
main.add_typer(token_app, name="token")


def _add_rlcore_commands() -> None:
    """Register rlcore's local commands (`train`, `eval`) on this CLI."""
    try:
        from rlcore.cli import app as rlcore_cli
    except ImportError as error:  # rlcore without its CLI: the service commands still work
        print(f"rlserve: rlcore commands unavailable ({error})", file=sys.stderr)
        return
    for command in rlcore_cli.registered_commands:
        main.registered_commands.append(command)


def _names_a_service_command(args: list[str]) -> bool:
    """True when the command line runs one of this module's commands (`token`, `up`, ...)."""
    named = next((arg for arg in args if not arg.startswith("-")), None)
    ours = {command.name for command in main.registered_commands}
    return named in ours | {group.name for group in main.registered_groups}


def _settings(data_dir: Path | None) -> Any:
    from app.settings import Settings

    if data_dir is not None:
        os.environ["RLSERVE_DATA_DIR"] = str(data_dir.expanduser().resolve())
    return Settings.from_env()


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="User the token belongs to (created if new).")],
    label: Annotated[str | None, typer.Option(help="Name of the token itself; default: NAME.")] = None,
    expires_in: Annotated[
        str | None, typer.Option(help="Expire after this long: 90m, 12h, 30d or 4w.")
    ] = None,
    expires: Annotated[str | None, typer.Option(help="Expire on this date (YYYY-MM-DD, 00:00 UTC).")] = None,
    scope: Annotated[
        str, typer.Option(help="api: the user's jobs; metrics: only /metrics (for a Prometheus scraper).")
    ] = "api",
    data_dir: Annotated[Path | None, typer.Option(envvar="RLSERVE_DATA_DIR")] = None,
) -> None:
    """Create an API token for user NAME and print it (it is stored hashed: shown only now)."""
    from app.db import session_scope, upgrade
    from app.models import TokenScope
    from app.tokens import TokenError, create_token, parse_expiry

    if scope not in TokenScope.__members__:
        raise typer.BadParameter(f"{scope!r}: expected api or metrics", param_hint="--scope")
    settings = _settings(data_dir)
    upgrade(settings.database_url)
    try:
        expires_at = parse_expiry(expires_in, expires)
        with session_scope(settings.database_url) as session:
            token = create_token(session, name, label or name, expires_at=expires_at, scope=TokenScope(scope))
    except TokenError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(token)


@token_app.command("list")
def token_list(data_dir: Annotated[Path | None, typer.Option(envvar="RLSERVE_DATA_DIR")] = None) -> None:
    """List tokens: name, user, scope, state, created, expires, last used (never the token itself)."""
    from app.db import session_scope, upgrade
    from app.tokens import format_time, list_tokens

    settings = _settings(data_dir)
    upgrade(settings.database_url)
    with session_scope(settings.database_url) as session:
        tokens = list_tokens(session)
    header = ("NAME", "USER", "SCOPE", "STATE", "CREATED", "EXPIRES", "LAST USED")
    rows = [
        (t.name, t.user, t.scope, t.state, *map(format_time, (t.created_at, t.expires_at, t.last_used_at)))
        for t in tokens
    ]
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        typer.echo("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@token_app.command("revoke")
def token_revoke(
    name: Annotated[str, typer.Argument(help="The token's name, as `rlserve token list` shows it.")],
    user: Annotated[str | None, typer.Option(help="Whose token, if several users have one so named.")] = None,
    data_dir: Annotated[Path | None, typer.Option(envvar="RLSERVE_DATA_DIR")] = None,
) -> None:
    """Revoke token NAME: requests with it are refused (401) from now on."""
    from app.db import session_scope, upgrade
    from app.tokens import TokenError, revoke_tokens

    settings = _settings(data_dir)
    upgrade(settings.database_url)
    try:
        with session_scope(settings.database_url) as session:
            count = revoke_tokens(session, name, user)
    except TokenError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"revoked {count} token{'s' if count > 1 else ''} named {name!r}")


def worker_argv(settings: Any, queues: str, concurrency: int, loglevel: str) -> list[str]:
    """The Celery worker command line for `queues` (names without the deployment prefix)."""
    names = ",".join(settings.queue_name(q.strip()) for q in queues.split(",") if q.strip())
    return [
        "worker",
        # Jobs run in a thread of the worker process, not in a forked pool child: CUDA is
        # never initialised before a fork (celery#3402), and the warm shutdown that SIGTERM
        # or Ctrl-C starts reaches the job (worker/shutdown.py), which checkpoints and is
        # re-queued instead of being killed.
        "--pool",
        "threads",
        "--queues",
        names,
        "--concurrency",
        str(concurrency),
        "--prefetch-multiplier",
        "1",
        "--without-gossip",
        "--without-mingle",
        "--loglevel",
        loglevel,
        "--hostname",
        f"rlserve-{os.getpid()}@%h",
    ]


@main.command("worker")
def worker_command(
    queues: Annotated[str, typer.Option(help="cpu, gpu or cpu,gpu. Use gpu on a GPU machine.")] = "cpu",
    concurrency: Annotated[int, typer.Option(min=1, help="Jobs at once; one per GPU.")] = 1,
    loglevel: Annotated[str, typer.Option()] = "info",
    data_dir: Annotated[Path | None, typer.Option(envvar="RLSERVE_DATA_DIR")] = None,
    gpus: Annotated[
        str | None,
        typer.Option(help="all, or GPU ids such as 0,1: one worker per GPU, each pinned to its own."),
    ] = None,
) -> None:
    """Run a Celery worker that trains queued jobs (migrations are applied at start)."""
    settings = _settings(data_dir)  # sets RLSERVE_DATA_DIR for the worker when --data-dir is given
    if gpus is not None:
        from app.gpu_workers import run_per_gpu, visible_gpus

        try:
            ids = visible_gpus(gpus)
        except ValueError as error:
            typer.echo(f"rlserve: {error}", err=True)
            raise typer.Exit(2) from None
        if not ids:
            typer.echo("rlserve: --gpus all: no CUDA GPU is visible on this machine", err=True)
            raise typer.Exit(1)
        typer.echo(f"rlserve: one worker per GPU: {', '.join(ids)}", err=True)
        # One job per GPU: each child runs one job at a time from the gpu queue (and cpu
        # if asked), whatever --concurrency says.
        argv = worker_command_line(settings, queues, 1, loglevel)
        raise typer.Exit(run_per_gpu(argv, ids))
    argv = worker_command_line(settings, queues, concurrency, loglevel)
    # The worker is a program of its own (`celery -A worker.celery_app`): this process becomes
    # it, so signals reach Celery directly and the API package never imports the worker.
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)


def worker_command_line(settings: Any, queues: str, concurrency: int, loglevel: str) -> list[str]:
    """`python -m celery -A worker.celery_app worker ...`: the worker as a process of its own."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "worker.celery_app",
        *worker_argv(settings, queues, concurrency, loglevel),
    ]


def start_worker_process(
    settings: Any, log_path: Path, queues: str = "cpu,gpu", loglevel: str = "warning"
) -> subprocess.Popen:
    """A worker in its own process group (Ctrl-C reaches only `up`, which stops it), logging to `log_path`."""
    env = {**os.environ, "RLSERVE_DATA_DIR": str(settings.data_dir)}
    argv = worker_command_line(settings, queues, 1, loglevel)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_worker_process(process: subprocess.Popen, timeout: float = 30.0) -> None:
    """SIGTERM the worker and its pool: a running job checkpoints and goes back to the queue."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def bind_listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to host:port for uvicorn; exits 1 with a one-line message if that fails."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    # As uvicorn does: a port left in TIME_WAIT by the last run may be bound again at once.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            typer.echo(f"rlserve: port {port} is in use; pass --port", err=True)
        else:
            typer.echo(f"rlserve: cannot listen on {host}:{port}: {error.strerror}", err=True)
        raise typer.Exit(1) from None
    sock.set_inheritable(False)
    return sock


@main.command("up")
def up_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    data_dir: Annotated[
        Path, typer.Option(envvar="RLSERVE_DATA_DIR", help="Database, broker, policies and checkpoints.")
    ] = Path("rlserve-data"),
    worker: Annotated[bool, typer.Option(help="Start one worker beside the API.")] = True,
) -> None:
    """Start the API and one worker with everything in DATA_DIR; print the dashboard URL."""
    import uvicorn

    from app.db import session_scope, upgrade
    from app.main import create_app
    from app.serving import AnnouncingServer
    from app.tokens import local_token

    settings = _settings(data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    sock = bind_listening_socket(host, port)  # first: a taken port stops here, before anything starts
    upgrade(settings.database_url)
    token = os.environ.get("RLSERVE_TOKEN")
    if not token:
        with session_scope(settings.database_url) as session:
            token = local_token(session, settings.data_dir)
    worker_log = settings.data_dir / "worker.log"
    process = start_worker_process(settings, worker_log) if worker else None
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    shown = f"[{shown}]" if ":" in shown else shown
    banner = (
        f"\n    rlserve is running; data in {settings.data_dir}\n"
        f"    Dashboard: http://{shown}:{port}/?token={token}\n"
        f"    API docs:  http://{shown}:{port}/docs  (send the token as 'Authorization: Bearer TOKEN')\n"
        + (f"    Worker log: {worker_log}\n" if worker else "")
        + "    Press Ctrl-C to stop.\n"
    )
    server = AnnouncingServer(
        uvicorn.Config(create_app(settings), log_level="warning"), on_started=lambda: typer.echo(banner)
    )
    # uvicorn shuts down on SIGTERM, then re-raises it; without a handler of ours that
    # kills this process before the `finally` below stops the worker, which lives on.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        if process is not None:
            typer.echo("stopping the worker (a running job checkpoints and is re-queued)...")
            stop_worker_process(process)


def _client(url: str, token: str | None) -> Any:
    import httpx

    if not token:
        raise typer.BadParameter("no token: pass --token or set RLSERVE_TOKEN", param_hint="--token")
    return httpx.Client(base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _fail(response: Any) -> None:
    try:
        body = response.json()
        detail = body.get("message") or body.get("detail")
    except ValueError:
        detail = response.text
    typer.echo(f"error {response.status_code}: {detail}", err=True)
    raise typer.Exit(1)


@main.command("submit")
def submit_command(
    spec_file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="TrainSpec as YAML or JSON.")
    ],
    url: Annotated[str, typer.Option(envvar="RLSERVE_URL")] = "http://127.0.0.1:8000",
    token: Annotated[str | None, typer.Option(envvar="RLSERVE_TOKEN")] = None,
    name: Annotated[str | None, typer.Option()] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Repeat for several tags.")] = None,
    wait: Annotated[bool, typer.Option(help="Follow the job with a progress bar until it ends.")] = False,
    download: Annotated[
        Path | None, typer.Option(help="After --wait, unzip the policy (safetensors + ONNX) here.")
    ] = None,
) -> None:
    """Submit a job to a running rlserve; optionally follow it and download the policy."""
    import yaml

    text = spec_file.read_text()
    spec = json.loads(text) if spec_file.suffix == ".json" else yaml.safe_load(text)
    with _client(url, token) as client:
        response = client.post("/api/jobs", json={"spec": spec or {}, "name": name, "tags": tag or []})
        if response.status_code not in (200, 201):
            _fail(response)
        job = response.json()
        typer.echo(f"job {job['id']} {job['status']}")
        if not (wait or download):
            return
        job = _follow(client, job)
        _say_how_it_ended(job)
        if download is not None:
            download.mkdir(parents=True, exist_ok=True)
            for fmt in ("safetensors", "onnx"):
                response = client.get(f"/api/jobs/{job['id']}/policy", params={"format": fmt})
                if response.status_code != 200:
                    _fail(response)
                zipfile.ZipFile(io.BytesIO(response.content)).extractall(download)
            typer.echo(f"policy in {download} (load it with rlcore.export.load_policy)")
        if job["status"] != "succeeded":
            raise typer.Exit(2)


def _say_how_it_ended(job: dict[str, Any]) -> None:
    """Print a followed job's end: status, step, mean return; exit 1 when it failed."""
    mean = "n/a" if job["mean_return"] is None else f"{job['mean_return']:.1f}"
    typer.echo(
        f"job {job['id']} {job['status']} at step {job['step']:,}: mean return (last 100 episodes) {mean}"
    )
    if job["status"] == "failed":
        typer.echo(f"error: {job['error']}", err=True)
        raise typer.Exit(1)


def _report(client: Any, job: dict[str, Any], wait: bool) -> None:
    """Print the job's id and status; with `wait`, follow it to its end (exit 1 failed, 2 cancelled)."""
    typer.echo(f"job {job['id']} {job['status']}")
    if not wait:
        return
    job = _follow(client, job)
    _say_how_it_ended(job)
    if job["status"] != "succeeded":
        raise typer.Exit(2)


@main.command("extend")
def extend_command(
    job_id: Annotated[str, typer.Argument(metavar="JOB", help="A finished or cancelled job's id.")],
    total_steps: Annotated[int, typer.Option("--total-steps", min=1, help="The new, larger budget.")],
    url: Annotated[str, typer.Option(envvar="RLSERVE_URL")] = "http://127.0.0.1:8000",
    token: Annotated[str | None, typer.Option(envvar="RLSERVE_TOKEN")] = None,
    wait: Annotated[bool, typer.Option(help="Follow the job with a progress bar until it ends.")] = False,
) -> None:
    """Train a finished or cancelled job on to more steps, from its checkpoint (same job, same curve)."""
    with _client(url, token) as client:
        response = client.post(f"/api/jobs/{job_id}/extend", json={"total_steps": total_steps})
        if response.status_code != 200:
            _fail(response)
        _report(client, response.json(), wait)


def _assignments(pairs: list[str]) -> dict[str, Any]:
    """`key=value` arguments as spec fields; values read as YAML scalars (1e-4, true, lstm)."""
    import yaml

    changes: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not key=value", param_hint="CHANGES")
        changes[key.strip()] = yaml.safe_load(value)
    return changes


@main.command("fork")
def fork_command(
    job_id: Annotated[str, typer.Argument(metavar="JOB", help="The job whose checkpoint to start from.")],
    changes: Annotated[
        list[str] | None,
        typer.Argument(metavar="KEY=VALUE...", help="Spec fields to change, e.g. learning_rate=1e-4."),
    ] = None,
    url: Annotated[str, typer.Option(envvar="RLSERVE_URL")] = "http://127.0.0.1:8000",
    token: Annotated[str | None, typer.Option(envvar="RLSERVE_TOKEN")] = None,
    name: Annotated[str | None, typer.Option(help="Default: the parent's name.")] = None,
    wait: Annotated[bool, typer.Option(help="Follow the new job with a progress bar until it ends.")] = False,
) -> None:
    """Start a new job from JOB's last checkpoint with some spec fields changed, linked to JOB."""
    body: dict[str, Any] = {"spec": _assignments(changes or [])}
    if name is not None:
        body["name"] = name
    with _client(url, token) as client:
        response = client.post(f"/api/jobs/{job_id}/fork", json=body)
        if response.status_code != 201:
            _fail(response)
        job = response.json()
        typer.echo(f"forked from {job['parent_id']} at step {job['forked_at_step']:,}")
        _report(client, job, wait)


def _follow(client: Any, job: dict[str, Any]) -> dict[str, Any]:
    """Poll the job with a rich progress bar until it ends; returns the final job."""
    from rlcore.progress import format_return, training_progress

    with training_progress(status=True, speed=False) as progress:
        task = progress.add_task(job["status"], total=job["total_steps"], ret=format_return(None))
        while job["status"] in ("queued", "running"):
            time.sleep(0.5)
            response = client.get(f"/api/jobs/{job['id']}")
            if response.status_code != 200:
                _fail(response)
            job = response.json()
            latest = job.get("latest_metrics") or {}
            ret = latest.get("charts/episodic_return")
            progress.update(task, completed=job["step"], description=job["status"])
            if ret is not None:
                progress.update(task, ret=format_return(ret))
    return job


STUDY_CELLS_SHOWN = 20  # cells `rlserve study` lists after submitting


def _read_study_file(path: Path) -> dict[str, Any]:
    """The body of POST /api/studies from a YAML or JSON file; exits 1 with one line if it cannot."""
    import yaml

    try:
        text = path.read_text()
    except OSError as error:
        typer.echo(f"error: cannot read {path}: {error.strerror or error}", err=True)
        raise typer.Exit(1) from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        where = getattr(error, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        typer.echo(
            f"error: {path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}{line}: {problem}",
            err=True,
        )
        raise typer.Exit(1) from None
    if not isinstance(data, dict):
        typer.echo(f"error: {path}: expected a mapping with spec, axes and seeds (see examples/)", err=True)
        raise typer.Exit(1)
    return data


def _interval(value: dict[str, float] | None) -> str:
    return "-" if value is None else f"{value['point']:.1f} [{value['low']:.1f}, {value['high']:.1f}]"


def _print_study(study: dict[str, Any]) -> None:
    """The cells as a table: values, progress, final score and MMER (IQM, 95% CI); * marks each env's best."""
    header = ("CELL", "VALUES", "DONE", "FINAL IQM [95% CI]", "MMER IQM [95% CI]", "N")
    rows = [
        (
            f"{cell['index']}{'*' if cell['is_best'] else ''}",
            cell["label"],
            f"{cell['progress']['percent']:.0f}%",
            _interval(cell["scores"]["final"]["iqm"]),
            _interval(cell["scores"]["mmer"]["iqm"]),
            str(cell["scores"][study["metric"]]["n"]) + ("~" if cell["partial"] else ""),
        )
        for cell in study["cells"]
    ]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    progress = study["progress"]
    typer.echo(
        f"{study['status']}: {progress['percent']:.0f}% of {progress['total_steps']:,} steps; "
        + ", ".join(f"{n} {s}" for s, n in progress["jobs"].items() if n)
    )
    for best in study["best"]:
        typer.echo(f"best on {best['env_id']} ({study['metric']}): cell {best['cell']} {best['label']}")
    if any(cell["partial"] for cell in study["cells"]):
        typer.echo("~ some runs are unfinished: their scores are of their points so far")


@main.command("study")
def study_command(
    target: Annotated[
        str,
        typer.Argument(
            metavar="FILE|status",
            help="A study as YAML or JSON (the body of POST /api/studies), or `status`.",
        ),
    ],
    study_id: Annotated[
        str | None, typer.Argument(metavar="[ID]", help="With `status`: the study's id.")
    ] = None,
    url: Annotated[str, typer.Option(envvar="RLSERVE_URL")] = "http://127.0.0.1:8000",
    token: Annotated[str | None, typer.Option(envvar="RLSERVE_TOKEN")] = None,
    metric: Annotated[str, typer.Option(help="status: final, mmer or eval picks the best cells.")] = "final",
    wait: Annotated[
        bool, typer.Option(help="Follow the study with a progress bar until every job ends, then show it.")
    ] = False,
) -> None:
    """Submit a study (spec, axes, seeds, grid or random search) from FILE, or `rlserve study status ID`."""
    import httpx

    if target == "status" and not study_id:
        raise typer.BadParameter("`status` needs the study's id", param_hint="ID")
    if target != "status" and study_id is not None:
        raise typer.BadParameter(f"unexpected {study_id!r}: give one study file", param_hint="ID")
    body = None if target == "status" else _read_study_file(Path(target))
    base = url.rstrip("/")
    try:
        with _client(url, token) as client:
            if body is None:
                response = client.get(f"/api/studies/{study_id}", params={"metric": metric})
            else:
                response = client.post("/api/studies", json=body)
    except httpx.HTTPError as error:
        typer.echo(f"error: cannot reach rlserve at {base}: {error}", err=True)
        raise typer.Exit(1) from None
    if response.status_code not in (200, 201):
        _fail(response)
    study = response.json()
    if body is None:
        _print_study(study)
        return
    typer.echo(
        f"study {study['id']}: {study['cells_count']} cells x {len(study['seeds'])} seeds = "
        f"{study['jobs_count']} jobs queued"
        + (f" (random search, study_seed {study['study_seed']})" if study["search"] == "random" else "")
    )
    for cell in study["cells"][:STUDY_CELLS_SHOWN]:
        typer.echo(f"  cell {cell['index']}: {cell['label']}")
    if study["cells_count"] > STUDY_CELLS_SHOWN:
        typer.echo(f"  ... and {study['cells_count'] - STUDY_CELLS_SHOWN} more")
    typer.echo(f"dashboard: {base}/#/studies/{study['id']}")
    typer.echo(f"api:       {base}/api/studies/{study['id']}  (rlserve study status {study['id']})")
    if wait:
        with _client(url, token) as client:
            _print_study(_follow_study(client, study, metric))


def _follow_study(client: Any, study: dict[str, Any], metric: str) -> dict[str, Any]:
    """Poll the study with a progress bar over all its jobs' steps until none is queued or running."""
    from rlcore.progress import format_return, training_progress

    def jobs_line(study: dict[str, Any]) -> str:
        counts = study["progress"]["jobs"]
        ended = counts["succeeded"] + counts["failed"] + counts["cancelled"]
        return f"{ended}/{study['jobs_count']} jobs done, {counts['running']} running"

    with training_progress(status=True, speed=False) as progress:
        total = study["progress"]["total_steps"]
        task = progress.add_task(jobs_line(study), total=total, ret=format_return(None))
        while study["status"] != "finished":
            time.sleep(1.0)
            response = client.get(f"/api/studies/{study['id']}", params={"metric": metric})
            if response.status_code != 200:
                _fail(response)
            study = response.json()
            progress.update(task, completed=study["progress"]["steps"], description=jobs_line(study))
    return study


# rlcore's CLI imports the spec, the env registry and numpy (0.5 s): only `train`, `eval`
# and the help need it, and the service commands (tokens, submit, up) are run often.
if not _names_a_service_command(sys.argv[1:]):
    _add_rlcore_commands()
