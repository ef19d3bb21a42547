"""`rlserve train` and `rlserve eval`: run rlcore from the command line, no service needed;
`rlserve build-kernels` builds rlcore's compiled kernels ahead of their first use.

torch and onnx are imported inside the commands: `rlserve` registers these commands on
every start, and `rlserve token list` should not wait seconds for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import Progress, TaskID

from rlcore.metrics import FanOut, JsonlSink
from rlcore.progress import format_return, training_progress
from rlcore.spec import TrainSpec

app = typer.Typer(add_completion=False, no_args_is_help=True)
console = Console(stderr=True)


def format_validation_error(error: ValidationError) -> str:
    """One line per bad field: `field: message`."""
    lines = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "spec"
        lines.append(f"  {field}: {item['msg']}")
    return "\n".join(lines)


def load_spec_or_exit(path: Path) -> TrainSpec:
    """The spec in `path`, or a readable message and exit code 2."""
    try:
        return TrainSpec.from_file(path)
    except FileNotFoundError:
        console.print(f"[red]error:[/] no such file: {path}")
    except ValidationError as error:
        console.print(f"[red]error:[/] invalid spec {path}:\n{format_validation_error(error)}")
    except ValueError as error:  # YAML/JSON syntax errors are ValueError subclasses
        console.print(f"[red]error:[/] cannot parse {path}: {error}")
    raise typer.Exit(2)


class ProgressSink:
    """Drives a progress bar from the trainer's metric points."""

    def __init__(self, progress: Progress, task: TaskID, start: int) -> None:
        self.progress, self.task = progress, task
        self.progress.update(task, completed=start)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        # An update in which no episode ended keeps the return of the last one that had some.
        returns = metrics.get("charts/episodic_return")
        self.progress.update(self.task, completed=step, sps=f"{metrics.get('perf/sps', 0):,.0f}")
        if returns is not None:
            self.progress.update(self.task, ret=format_return(returns))

    def flush(self) -> None:
        """A progress bar keeps nothing."""


@app.command("train")
def train_command(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC", help="YAML or JSON TrainSpec.")],
    out: Annotated[Path, typer.Option("--out", help="Run folder; resumes if it holds a checkpoint.")],
) -> None:
    """Train a policy; writes spec, metrics, checkpoints and the exported policy to OUT."""
    from rlcore.envs.plugins import load_plugins
    from rlcore.run import SpecMismatchError
    from rlcore.trainer import last_checkpoint_step, train

    load_plugins()  # before the spec is validated: it may name a plugin env
    spec = load_spec_or_exit(spec_path)
    out.mkdir(parents=True, exist_ok=True)
    metrics_file = JsonlSink(out / "metrics.jsonl")
    resumed = last_checkpoint_step(out)
    if resumed is not None:
        metrics_file.drop_after(resumed)
        console.print(f"resuming {out} from step {resumed:,}")

    console.print(f"training {spec.algo.value} {spec.model.value} on {spec.env_id} into {out}")
    with training_progress(console) as progress:
        task = progress.add_task("train", total=spec.total_steps, ret=format_return(None), sps="-")
        bar = ProgressSink(progress, task, resumed or 0)
        try:
            result = train(spec, out, sink=FanOut(metrics_file, bar))
        except SpecMismatchError as error:
            console.print(f"[red]error:[/] {error}")
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            console.print("interrupted; the last checkpoint is kept, run the same command to resume")
            raise typer.Exit(130) from None
    mean = "n/a" if result.mean_return is None else f"{result.mean_return:.1f}"
    console.print(
        f"done: {result.steps:,} steps in {result.wall_time:.1f} s, "
        f"mean return (last 100 episodes) {mean}; policy in {out}"
    )


@app.command("eval")
def eval_command(
    run_dir: Annotated[Path, typer.Argument(metavar="DIR", help="Run folder or policy folder.")],
    episodes: Annotated[int, typer.Option("--episodes", min=1, max=100_000)] = 100,
    seed: Annotated[int, typer.Option("--seed")] = 12345,
    env_id: Annotated[str | None, typer.Option("--env", help="Default: the policy's env.")] = None,
    deterministic: Annotated[bool, typer.Option("--deterministic/--sample")] = False,
) -> None:
    """Play EPISODES episodes with an exported policy and print the mean and std of the return."""
    from rlcore.envs import ENVS, EnvOptions
    from rlcore.envs.plugins import load_plugins
    from rlcore.evaluate import run_episodes
    from rlcore.export import load_policy

    load_plugins()
    try:
        policy = load_policy(run_dir, seed=seed)
    except (FileNotFoundError, ValueError) as error:
        console.print(f"[red]error:[/] {error}")
        raise typer.Exit(2) from None
    env = env_id or policy.metadata.get("env_id")
    if env not in ENVS:
        console.print(f"[red]error:[/] unknown environment {env!r}; pass --env with one of {sorted(ENVS)}")
        raise typer.Exit(2)

    def act(obs: np.ndarray, starts: np.ndarray) -> np.ndarray:
        return policy.act(obs, deterministic=deterministic, episode_starts=starts)

    # The policy's own env is built as it trained (frame stack, sticky actions...).
    saved = policy.metadata.get("env_options") if env == policy.metadata.get("env_id") else None
    returns = run_episodes(act, env, episodes, seed, EnvOptions(**saved) if saved else None)
    typer.echo(
        f"{env}: mean return {np.mean(returns):.2f} ± {np.std(returns):.2f} (std) over {episodes} episodes"
    )


@app.command("build-kernels")
def build_kernels_command() -> None:
    """Build the compiled GRU/LSTM loops and PPO loss for this machine (else the first training run does)."""
    from rlcore import compiled

    if compiled.loops() is None:
        typer.echo("compiled kernels: not built; training runs the slower Python code (see the warning)")
    else:
        typer.echo("compiled kernels: ready")
