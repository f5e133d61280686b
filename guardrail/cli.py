"""`guardrail`: train, run the local cloud, the demo, replay a saved event, show status, build a report.

Local commands talk to the local cloud described by `.guardrail/cloud.json` (`guardrail up`); `--aws`
talks to a stack deployed with SAM, with credentials and region from the usual AWS chain (or `--profile`,
`--region`, as the AWS CLI).

Built on Click. Errors are one line with the fix (`guardrail: ...`, exit 1; usage errors exit 2); `guardrail
--debug <command>` shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

DEFAULT_MODELS = Path("artifacts/models")
DEFAULT_WORKDIR = Path(".guardrail")
# Keys of an EventBridge event; a document with more is a state input (events/states/), not a trigger.
EVENT_KEYS = {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}


class CliError(click.ClickException):
    """One line with the fix; exit 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"guardrail: {self.format_message()}", err=True, file=file)


def _console() -> Console:
    # No highlighter: ARNs and S3 URIs print plain (rich painted pieces of ARNs). soft_wrap keeps them on one line.
    return Console(soft_wrap=True, highlight=False)


# ---------------------------------------------------------------- where: the local cloud or a stack on AWS


def _port_open(url: str, timeout: float = 1.0) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 80), timeout=timeout):
            return True
    except OSError:
        return False


def local_state(workdir: Path) -> Any:
    """The running local cloud of `workdir`; a one-line error when there is none or it is stale."""
    from local.cloud import _is_local_cloud
    from local.env import STATE_FILE, load_state

    try:
        state = load_state(workdir)
    except FileNotFoundError as exc:
        raise CliError(str(exc)) from None
    except ValueError:
        raise CliError(f"{Path(workdir) / STATE_FILE} is not a local cloud state file: "
                       f"`guardrail down --workdir {workdir}` removes it") from None
    if not _is_local_cloud(state.pid) or not _port_open(state.moto_url):
        raise CliError(
            f"the local cloud in {workdir} (pid {state.pid}) is not running: start one with `guardrail up`, "
            f"or `guardrail down --workdir {workdir}` to clean up"
        )
    return state


def _target(opts: dict[str, Any]) -> Any:
    from guardrail.demo import Target

    if _on_aws(opts):
        return Target.aws(opts["stack_name"], profile=opts.get("profile"), region=opts.get("region"))
    state = local_state(opts["workdir"])
    return Target.from_outputs(state.outputs, state.state_machines, state.env, state.alert_queue_url)


def _on_aws(opts: dict[str, Any]) -> bool:
    return bool(opts.get("aws") or opts.get("profile") or opts.get("region"))


def where_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--workdir (local) or --aws/--stack-name/--profile/--region, as the AWS CLI names them."""
    for option in reversed([
        click.option("--workdir", type=click.Path(path_type=Path), default=DEFAULT_WORKDIR, show_default=True,
                     help="Folder of the local cloud's state (cloud.json), as `guardrail up --workdir`."),
        click.option("--aws", is_flag=True, help="Use the stack deployed on AWS instead of the local cloud."),
        click.option("--stack-name", default="guardrail", show_default=True,
                     help="With --aws: the CloudFormation stack deployed by `sam deploy`."),
        click.option("--profile", help="With --aws: AWS named profile, as `aws --profile` (implies --aws)."),
        click.option("--region", help="With --aws: AWS region, as `aws --region` (implies --aws)."),
    ]):
        func = option(func)
    return func


# ---------------------------------------------------------------- the group


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="guardrail", prog_name="guardrail")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
def cli(debug: bool) -> None:
    """Guardrail: safe rollout of SageMaker models. Train, run the local cloud and the demo, replay a saved
    event, show status, build a report."""


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
             add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def train(args: tuple[str, ...]) -> int:
    """Train the models (options: `guardrail train --help`)."""
    try:
        from training.cli import main as train_main
    except ImportError as exc:
        raise CliError(f"training is not available: {exc} (install the `training` extra)") from None
    return int(train_main(list(args)) or 0)


# ---------------------------------------------------------------- up / down / env


class _Collect(logging.Handler):
    """Keeps the deployer's "not created" warning for the banner (said once, in plain words)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.not_created: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("not created"):
            self.not_created = message.split(": ", 1)[-1]


def _quiet_logging(log_file: Path) -> _Collect:
    """Everything to `log_file`; the terminal only sees errors (and the banner)."""
    import warnings

    log_file.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    to_file = logging.FileHandler(log_file)
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(to_file)
    to_terminal = logging.StreamHandler(sys.stderr)
    to_terminal.setLevel(logging.ERROR)
    to_terminal.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(to_terminal)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    collect = _Collect()
    logging.getLogger("local.deployer").addHandler(collect)
    logging.captureWarnings(True)  # moto's CloudFormation UserWarnings go to the log file, not the terminal
    warnings.simplefilter("default")
    return collect


def banner(state: Any, workdir: Path, seconds: float, not_created: str | None, log_file: Path) -> str:
    from guardrail.demo import Target

    target = Target.from_outputs(state.outputs, state.state_machines, state.env, state.alert_queue_url)
    flag = "" if Path(workdir) == DEFAULT_WORKDIR else f" --workdir {workdir}"
    lines = [
        f"Local cloud ready in {seconds:.1f} s (pid {state.pid}; Ctrl-C or `guardrail down{flag}` stops it)",
        f"  stack          {state.stack_name}",
        f"  bucket         {target.bucket}",
        f"  endpoint       {target.endpoint_name} (created by the first deployment)",
        f"  state machine  {target.state_machine_arn}",
        f"  moto           {state.moto_url}    SageMaker emulator {state.sagemaker_url}",
        f"  state, logs    {Path(workdir) / 'cloud.json'}, {log_file}",
    ]
    if not_created:
        lines.append(f"Not created locally (expected: moto cannot create them; they matter on AWS only): {not_created}")
    lines += ["AWS CLI / SDK against it:", f'  eval "$(guardrail env{flag})"   # or:']
    lines += [f"  export {k}={v}" for k, v in state.env.items()]
    lines.append(f"Next: guardrail replay events/first-deployment.json{flag}")
    return "\n".join(lines)


@cli.command()
@click.option("--workdir", type=click.Path(path_type=Path), default=DEFAULT_WORKDIR, show_default=True,
              help="Folder for cloud.json, the Lambda logs and up.log.")
@click.option("--moto-port", type=int, default=5055, show_default=True, help="moto's port (0: a free one).")
@click.option("--sagemaker-port", type=int, default=5056, show_default=True,
              help="The SageMaker emulator's port (0: a free one).")
@click.option("--region", default="us-east-1", show_default=True, help="Region the local cloud pretends to be.")
@click.option("--template", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
              help="SAM template to deploy [default: the project's template.yaml].")
@click.option("--no-template", is_flag=True, help="Start empty, deploy nothing.")
@click.option("--samconfig", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
              help="samconfig.toml whose [<config-env>.deploy.parameters] are used [default: the project's].")
@click.option("--config-env", default="local", show_default=True, help="samconfig environment.")
@click.option("--parameter", "parameters", multiple=True, metavar="KEY=VALUE",
              help="Template parameter override (repeatable).")
@click.option("--no-strict-iam", is_flag=True, help="No IAM checks; Lambda workers use the admin keys.")
@click.option("--parent-pid", type=int, hidden=True)
def up(workdir: Path, moto_port: int, sagemaker_port: int, region: str, template: Path | None, no_template: bool,
       samconfig: Path | None, config_env: str, parameters: tuple[str, ...], no_strict_iam: bool,
       parent_pid: int | None) -> int:
    """Run the local cloud in the foreground and deploy template.yaml into it."""
    from local.cloud import DEFAULT_SAMCONFIG, DEFAULT_TEMPLATE, LocalCloud, _check_port_free, _is_local_cloud
    from local.env import load_state

    with contextlib.suppress(FileNotFoundError, ValueError):
        running = load_state(workdir)
        if _is_local_cloud(running.pid):
            raise CliError(f"a local cloud already runs from {workdir} (pid {running.pid}): `guardrail down"
                           f"{'' if workdir == DEFAULT_WORKDIR else f' --workdir {workdir}'}` first")
    for option, port in (("--moto-port", moto_port), ("--sagemaker-port", sagemaker_port)):
        try:
            _check_port_free("127.0.0.1", port)
        except RuntimeError:
            raise CliError(f"port {port} is in use: `guardrail down` stops a local cloud, or choose another "
                           f"{option} (0 picks a free one)") from None
    bad = [p for p in parameters if "=" not in p]
    if bad:
        raise click.BadParameter(f"{bad[0]!r} is not KEY=VALUE", param_hint="--parameter")
    log_file = Path(workdir) / "up.log"
    collect = _quiet_logging(log_file)
    cloud = LocalCloud(
        moto_port=moto_port, sagemaker_port=sagemaker_port, region=region, workdir=workdir,
        template=None if no_template else (template or DEFAULT_TEMPLATE), samconfig=samconfig or DEFAULT_SAMCONFIG,
        config_env=config_env, parameter_overrides=dict(p.split("=", 1) for p in parameters),
        strict=not no_strict_iam,
    )
    click.echo("Starting the local cloud (moto, SageMaker emulator, alarm evaluator, Lambda runtime)…")
    started = time.monotonic()

    def ready(c: Any) -> None:
        text = banner(c._state(), workdir, time.monotonic() - started, collect.not_created, log_file)
        click.echo(text)
        sys.stdout.flush()

    try:
        cloud.foreground(on_ready=ready, parent_pid=parent_pid)
    except Exception as exc:
        logging.getLogger(__name__).info("the local cloud did not start", exc_info=True)  # up.log only
        line = explain(exc) or f"{type(exc).__name__}: {exc}"
        raise CliError(f"the local cloud did not start: {line} (the traceback is in {log_file})") from exc
    return 0


@cli.command()
@click.option("--workdir", type=click.Path(path_type=Path), default=DEFAULT_WORKDIR, show_default=True,
              help="Folder of the local cloud's state (cloud.json).")
def down(workdir: Path) -> int:
    """Stop the local cloud of a workdir (and remove a stale cloud.json)."""
    from local.cloud import LocalCloud

    click.echo("stopped" if LocalCloud.down(workdir) else "no local cloud running")
    return 0


@cli.command()
@click.option("--workdir", type=click.Path(path_type=Path), default=DEFAULT_WORKDIR, show_default=True,
              help="Folder of the local cloud's state (cloud.json).")
@click.option("--unset", is_flag=True, help="Print the commands that undo the exports.")
def env(workdir: Path, unset: bool) -> int:
    """Print the exports that point the AWS CLI and SDKs at the local cloud: eval "$(guardrail env)"."""
    state = local_state(workdir)
    if unset:
        click.echo("unset " + " ".join(state.env))
        return 0
    for key, value in state.env.items():
        click.echo(f"export {key}={value}")
    click.echo(f'# eval "$(guardrail env{"" if workdir == DEFAULT_WORKDIR else f" --workdir {workdir}"})"')
    return 0


# ---------------------------------------------------------------- demo


def _scenario_names(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    from guardrail import scenarios

    unknown = [v for v in value if v not in scenarios.BY_KEY]
    if unknown:
        raise click.BadParameter(f"unknown scenario {unknown[0]!r}; known: {', '.join(scenarios.BY_KEY)}")
    return value


@cli.command()
@click.option("--only", multiple=True, metavar="SCENARIO", callback=_scenario_names,
              help="Run only this scenario (repeatable; more names may follow as arguments). Scenarios that need "
                   "an endpoint deploy first-deployment before them when there is none.")
@click.argument("more", nargs=-1, metavar="[SCENARIO]...", callback=_scenario_names)
@click.option("--models", type=click.Path(path_type=Path), default=DEFAULT_MODELS, show_default=True,
              help="Trained models (trained there when missing, unless --no-train).")
@click.option("--reports", type=click.Path(path_type=Path), default=Path("reports"), show_default=True,
              help="Folder for one HTML report per execution and index.html.")
@click.option("--workdir", type=click.Path(path_type=Path), default=None,
              help="Folder of the demo's own local cloud [default: .guardrail/demo]; with --attach, of the running "
                   "one [default: .guardrail, as `guardrail up`].")
@click.option("--attach", is_flag=True,
              help="Run on the local cloud already running from --workdir (`guardrail up`) instead of starting one.")
@click.option("--no-train", is_flag=True, help="Never train: fail if a model in --models is missing.")
@click.option("--trials", type=int, default=None, help="Optuna tuning trials when training.")
def demo(only: tuple[str, ...], more: tuple[str, ...], models: Path, reports: Path, workdir: Path | None,
         attach: bool, no_train: bool, trials: int | None) -> int:
    """Train or reuse the models, start the local cloud, run every scenario (or a subset) with a live view."""
    from guardrail.demo import run_demo

    selected = [*only, *more]
    if more and not only:
        raise click.UsageError("scenario names go after --only: guardrail demo --only first-deployment ...")
    target = None
    workdir = workdir or (DEFAULT_WORKDIR if attach else Path(".guardrail/demo"))
    if attach:
        from guardrail.demo import Target

        state = local_state(workdir)
        target = Target.from_outputs(state.outputs, state.state_machines, state.env, state.alert_queue_url)
    return run_demo(models_dir=models, reports_dir=reports, workdir=workdir, only=selected or None,
                    train=not no_train, trials=trials, console=_console(), target=target)


# ---------------------------------------------------------------- replay


def read_event(path: Path) -> dict[str, Any]:
    """A saved EventBridge event; one-line errors for anything else (with the fix for a state input)."""
    if not path.is_file():
        raise CliError(f"no such event file: {path} (the saved events are events/<scenario>.json)")
    try:
        event = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CliError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc.__class__.__name__}: {exc}") from None
    if not isinstance(event, dict):
        raise CliError(f"{path} is not an EventBridge event: a JSON object is needed, not {type(event).__name__}")
    extra = sorted(set(event) - EVENT_KEYS)
    if extra and "detail" in event:
        from guardrail.invoke import InvokeError, resolve_step

        try:
            step = resolve_step(path.stem)[0]
        except InvokeError:
            step = "<Step>"
        raise CliError(
            f"{path} is a state input (it carries {', '.join(extra[:4])}), not a trigger event: run that one step "
            f"with `guardrail invoke {step} {path}` (or `aws lambda invoke`, events/README.md), or replay an "
            f"events/<scenario>.json"
        )
    if not isinstance(event.get("detail"), dict):
        raise CliError(f"{path} is not an EventBridge event: missing key `detail`")
    return event


def wait_showing_progress(sfn: Any, arn: str, timeout: float, console: Console,
                          tick: Callable[[], str] | None = None) -> dict[str, Any]:
    """Wait for the execution, printing each state it enters (and a spinner on a terminal)."""
    from guardrail.demo import TERMINAL, current_state, final_document

    started = time.monotonic()
    last: str | None = None
    status_cm: Any = console.status("waiting for the execution…") if console.is_terminal else contextlib.nullcontext()
    with status_cm as spinner:
        while True:
            status = sfn.describe_execution(executionArn=arn)["status"]
            state = current_state(sfn, arn)
            elapsed = time.monotonic() - started
            if state and state != last:
                console.print(f"  {elapsed:6.1f}s  state {state}")
                last = state
            if spinner is not None:
                extra = f"  {tick()}" if tick else ""
                spinner.update(f"{escape(state or '…')}  {elapsed:.0f}s{escape(extra)}")
            if status in TERMINAL:
                break
            if elapsed > timeout:
                raise CliError(f"{arn} still running after {timeout:.0f} s (`guardrail status` to follow it)")
            time.sleep(0.5)
    return final_document(sfn, arn)[1]


@cli.command()
@click.argument("event", type=click.Path(path_type=Path))
@where_options
@click.option("--state-machine-arn", help="Start this state machine with the event (default: the stack's).")
@click.option("--models", type=click.Path(path_type=Path), default=DEFAULT_MODELS, show_default=True,
              help="Local: where the scenario's artifacts (and holdout.csv for traffic) are.")
@click.option("--traffic", "traffic_rps", type=click.FloatRange(min=0), default=None, metavar="RPS",
              help="Requests per second sent while the execution runs [default: the scenario's, as in the demo; "
                   "0: none].")
@click.option("--no-wait", is_flag=True, help="Print the execution ARN and return (no traffic is sent).")
@click.option("--timeout", type=float, default=300, show_default=True, help="Seconds to wait for the execution.")
@click.option("--report", is_flag=True, help="Write an HTML report when done.")
@click.option("--reports", type=click.Path(path_type=Path), default=Path("reports"), show_default=True,
              help="Folder for the report (<scenario>.html).")
def replay(event: Path, workdir: Path, aws: bool, stack_name: str, profile: str | None, region: str | None,
           state_machine_arn: str | None, models: Path, traffic_rps: float | None, no_wait: bool, timeout: float,
           report: bool, reports: Path) -> int:
    """Replay a saved trigger event (events/<scenario>.json), with the scenario's traffic, and check its outcome."""
    from guardrail import scenarios
    from guardrail.demo import Traffic, find_execution, holdout

    opts = {"workdir": workdir, "aws": aws, "stack_name": stack_name, "profile": profile, "region": region}
    console = _console()
    doc_in = read_event(event)
    detail = doc_in["detail"]
    target = _target(opts)
    sfn = target.client("stepfunctions")
    machine = state_machine_arn or target.state_machine_arn
    scenario = scenarios.BY_KEY.get(event.stem)
    rps = traffic_rps if traffic_rps is not None else (scenario.traffic_rps if scenario else 0.0)
    if scenario is not None and scenario.needs_endpoint:
        from guardrail.demo import endpoint_view

        if endpoint_view(target.client("sagemaker"), target.endpoint_name).status is None:
            raise CliError(f"{scenario.key} needs endpoint {target.endpoint_name} in service (it updates it) and there "
                           f"is none yet: `guardrail replay events/first-deployment.json` first")
    data = holdout(models) if rps > 0 and not no_wait else None  # fails before anything is uploaded
    # The saved events carry a placeholder bucket: point them at the stack's.
    if isinstance(detail.get("bucket"), dict):
        detail["bucket"]["name"] = target.bucket
        doc_in["resources"] = [f"arn:aws:s3:::{target.bucket}"]
    key = (detail.get("object") or {}).get("key")
    is_upload = isinstance(key, str) and key.startswith(target.model_prefix) and key.endswith("/model.tar.gz")
    since = datetime.now(UTC)
    on_aws = _on_aws(opts)

    def start_directly() -> str:
        name = f"replay-{event.stem}-{int(time.time() * 1000)}"[:80]
        return sfn.start_execution(stateMachineArn=machine, name=name, input=json.dumps(doc_in))["executionArn"]

    with Traffic(target, data, rps) if data is not None else contextlib.nullcontext() as traffic:
        if data is not None:
            console.print(f"traffic {rps:g} req/s to {target.endpoint_name} (the scenario's; --traffic 0 for none)")
        if not is_upload:
            # A malformed event never matches the rule: it goes straight to the state machine (events/README.md).
            arn = start_directly()
        elif on_aws:
            # EventBridge refuses PutEvents with an aws.* source: on AWS a replay starts the execution, with the
            # identity of the object as it is in the bucket now.
            from botocore.exceptions import ClientError

            try:
                head = target.client("s3").head_object(Bucket=target.bucket, Key=key)
                detail["object"].update({"etag": head["ETag"].strip('"'), "version-id": head.get("VersionId")})
            except ClientError as exc:  # the execution then reports the missing artifact itself
                console.print(f"[yellow]cannot read s3://{escape(target.bucket)}/{escape(key)}: "
                              f"{escape(str(exc))}[/yellow]")
            arn = start_directly()
        elif scenario is not None:
            # Locally: stage the scenario's files into the stack's bucket; the tarball upload is the trigger.
            head = scenarios.stage(target.client("s3"), target.bucket, scenario, models, target.model_prefix)
            console.print(f"uploaded s3://{target.bucket}/{head['key']}")
            arn = find_execution(sfn, machine, head["key"], since, timeout=30)
        else:
            # An upload we have no artifacts for: put the event on the bus as S3 would.
            answer = target.client("events").put_events(Entries=[{
                "Source": doc_in.get("source", "aws.s3"), "DetailType": doc_in.get("detail-type", "Object Created"),
                "Detail": json.dumps(detail), "Resources": doc_in.get("resources", []),
            }])
            if answer.get("FailedEntryCount"):
                raise CliError(f"put_events refused the event: {answer['Entries']}")
            arn = find_execution(sfn, machine, key, since, timeout=30)
        console.print(f"execution {arn}")
        if no_wait:
            return 0

        def counts() -> str:
            ok, errors = traffic.counts() if traffic is not None else ({}, {})
            return f"requests answered {sum(ok.values())}, failed {sum(errors.values())}" if traffic else ""

        doc = wait_showing_progress(sfn, arn, timeout, console, tick=counts if data is not None else None)
        if data is not None:
            console.print(f"traffic: {counts()}")
    outcome = doc.get("outcome")
    error = doc.get("error") or {}
    console.print(f"outcome [bold]{escape(str(outcome))}[/bold]" + (f" ({escape(str(error.get('Error')))})"
                                                                     if error else ""))
    if report:
        from guardrail.report import write_report

        path = write_report(arn, Path(reports) / f"{event.stem}.html", target.client)
        console.print(f"report {path}")
    expected = scenario.expected if scenario else ("FAILED" if not is_upload else None)
    if expected and outcome != expected:
        console.print(f"[red]expected {expected} (README.md \"Demo\" table, guardrail/scenarios.py)[/red]")
        return 1
    return 0


# ---------------------------------------------------------------- status


def live_alarms(alarms: dict[str, str], configs: set[str]) -> dict[str, str]:
    """The alarms of the endpoint's live configs (alarm names carry their config); retired ones are left out."""
    from guardrail.demo import alarms_in_play

    return alarms_in_play(alarms, configs)


def fleet_counts(doc: dict[str, Any]) -> str | None:
    """How many requests each fleet served, as the SNS alert says it (functions/steps/notify.py): the update's
    evidence (new and old fleet, from UpdateEndpoint to the end of the watch) or the shadow test's two variants."""
    evidence = (doc.get("watch") or {}).get("evidence")
    if isinstance(evidence, dict):
        text = f"new fleet {evidence.get('new_fleet_requests')}"
        if evidence.get("old_fleet_requests") is not None:
            text += f", old fleet {evidence['old_fleet_requests']}"
        return text + f" requests (min {evidence.get('min_requests')})"
    analysis = (doc.get("shadow") or {}).get("analysis")
    if isinstance(analysis, dict):
        production, shadow = analysis.get("production") or {}, analysis.get("shadow") or {}
        return f"production {production.get('invocations', 0):.0f}, shadow {shadow.get('invocations', 0):.0f} requests"
    return None


def decided(doc: dict[str, Any], described: dict[str, Any]) -> str | None:
    """Who decided and why (issue 15): an approval gate's answer, or the abort's StopExecution cause."""
    if described.get("status") == "ABORTED" and described.get("cause"):
        return str(described["cause"])
    approval = doc.get("approval")
    if not isinstance(approval, dict):
        return None
    from functions.models import ApprovalDecision

    try:
        decision = ApprovalDecision.model_validate(approval)
    except ValueError:
        return None
    text = f"{decision.decision.lower()} by {decision.decided_by or 'unknown'}"
    return text + (f": {decision.reason}" if decision.reason else "")


def execution_rows(sfn: Any, machine: str, last: int) -> list[dict[str, Any]]:
    """The last executions, newest first: start, ARN, status, outcome, error name, requests per fleet."""
    from guardrail.demo import final_document

    executions = sfn.list_executions(stateMachineArn=machine, maxResults=min(max(last, 1), 1000))["executions"]
    rows = []
    for ex in sorted(executions, key=lambda e: e["startDate"], reverse=True)[:last]:
        described, doc = final_document(sfn, ex["executionArn"])
        error = (doc.get("error") or {}).get("Error") or described.get("error")
        outcome = doc.get("outcome") or ("FAILED" if ex["status"] == "FAILED" else None)
        rows.append({"started": ex["startDate"], "arn": ex["executionArn"], "status": ex["status"],
                     "outcome": outcome, "error": error, "served": fleet_counts(doc),
                     "decided": decided(doc, described)})
    return rows


def failure_label(rows: list[dict[str, Any]]) -> str:
    """Whose FailureReason it is: the last endpoint-changing execution tells if it was that one (a rollback)."""
    for row in rows:
        if row["outcome"] in ("ROLLED_BACK",):
            return "failure reason (last update, rolled back)"
        if row["outcome"] in ("DEPLOYED", "DEPLOYED_UNVERIFIED", "PROMOTED"):
            when = row["started"].astimezone(UTC).strftime("%H:%M:%S")
            return f"failure reason (a previous update; the last one, {when} UTC, was {row['outcome']})"
    return "failure reason (a previous update)"


@cli.command()
@where_options
@click.option("--last", type=click.IntRange(min=1), default=10, show_default=True,
              help="How many executions to list.")
@click.option("--all-alarms", is_flag=True, help="Also list the alarms of retired endpoint configs.")
def status(workdir: Path, aws: bool, stack_name: str, profile: str | None, region: str | None, last: int,
           all_alarms: bool) -> int:
    """Endpoint, config, variant weights, the live configs' alarms, the last executions (full ARNs)."""
    from guardrail.demo import alarm_states, endpoint_view

    opts = {"workdir": workdir, "aws": aws, "stack_name": stack_name, "profile": profile, "region": region}
    console = _console()
    target = _target(opts)
    sm, sfn, cw = target.client("sagemaker"), target.client("stepfunctions"), target.client("cloudwatch")
    view = endpoint_view(sm, target.endpoint_name)
    rows = execution_rows(sfn, target.state_machine_arn, last)
    table = Table(title=f"endpoint {escape(target.endpoint_name)}", show_header=False)
    table.add_row("status", escape(view.status or "(no endpoint)"))
    table.add_row("config", escape(view.config or "—"))
    table.add_row("pending config", escape(view.pending_config or "—"))
    table.add_row("variants (weight)", escape(", ".join(f"{k} {v:.2f}" for k, v in view.weights.items()) or "—"))
    table.add_row("shadow variants", escape(", ".join(view.shadow) or "—"))
    if view.failure_reason:
        label = failure_label(rows) if view.status == "InService" else "failure reason"
        table.add_row(escape(label), escape(view.failure_reason))
    console.print(table)
    states = alarm_states(cw, target.endpoint_name)
    shown = states if all_alarms else live_alarms(states, {view.config or "", view.pending_config or ""})
    hidden = len(states) - len(shown)
    alarms = Table(title="alarms" + ("" if all_alarms else " of the live configs")
                   + (f" ({hidden} of retired configs not shown: --all-alarms)" if hidden else ""))
    alarms.add_column("alarm")
    alarms.add_column("state")
    for name, state in sorted(shown.items()):
        alarms.add_row(escape(name), f"[red]{escape(state)}[/red]" if state == "ALARM" else escape(state))
    console.print(alarms)
    console.print("last executions (newest first; `guardrail report <arn or name>`)")
    for row in rows:
        outcome = row["outcome"] or "—"
        if row["error"]:
            outcome += f" ({row['error']})"
        served = f"  served: {escape(row['served'])}" if row.get("served") else ""
        served += f"  {escape(row['decided'])}" if row.get("decided") else ""
        if row["status"] == "RUNNING":  # an approval gate waiting for a person (issue 15)
            from guardrail.operator import waiting_for

            waiting = waiting_for(sfn, row["arn"])
            served += f"  [yellow]{escape(waiting)}[/yellow]" if waiting else ""
        console.print(f"  {row['started'].astimezone(UTC):%Y-%m-%d %H:%M:%S}  {row['status']:<9}  "
                      f"{escape(outcome):<28}  {escape(row['arn'])}{served}", highlight=False)
    return 0


# ---------------------------------------------------------------- report


def execution_arn(name_or_arn: str, state_machine_arn: str) -> str:
    """An execution ARN from a name: the state machine's ARN with `execution` and the name appended."""
    if name_or_arn.startswith("arn:"):
        return name_or_arn
    prefix, _, machine = state_machine_arn.rpartition(":stateMachine:")
    return f"{prefix}:execution:{machine}:{name_or_arn}"


@cli.command()
@click.argument("execution")
@click.option("--out", type=click.Path(path_type=Path),
              help="HTML file to write [default: reports/<execution name>.html].")
@click.option("--period", type=int, help="Metric period in seconds [default: from the execution's duration].")
@where_options
def report(execution: str, out: Path | None, period: int | None, workdir: Path, aws: bool, stack_name: str,
           profile: str | None, region: str | None) -> int:
    """HTML report of one execution, by ARN or by name (as `guardrail status` lists them)."""
    from guardrail.report import ReportError, write_report

    opts = {"workdir": workdir, "aws": aws, "stack_name": stack_name, "profile": profile, "region": region}
    if execution.startswith("arn:") and _on_aws(opts):
        from guardrail.demo import aws_client

        make_client = aws_client(profile, region)
    else:
        target = _target(opts)
        execution = execution_arn(execution, target.state_machine_arn)
        make_client = target.client
    try:
        path = write_report(execution, out, client=make_client, period=period)
    except ReportError as exc:
        raise CliError(str(exc)) from None
    _console().print(f"report written to {path}")
    return 0


# ---------------------------------------------------------------- invoke


@cli.command()
@click.argument("step")
@click.argument("input_file", metavar="[INPUT]", required=False, type=click.Path(path_type=Path))
@click.option("--key", help="Use this upload in the stack's bucket (e.g. models/bank-marketing/v1/model.tar.gz): its "
                            "S3 identity and, for a step after ParseUpload, the upload document ParseUpload makes of it.")
@click.option("--log", "show_log", is_flag=True, help="Also print the function's log tail (when Lambda returns it).")
@where_options
def invoke(step: str, input_file: Path | None, key: str | None, show_log: bool, workdir: Path, aws: bool,
           stack_name: str, profile: str | None, region: str | None) -> int:
    """Run one state's deployed Lambda function with a state input [default: events/states/<step>.json] and print
    its output (no Docker: the function deployed in the local cloud, or on AWS with --aws)."""
    from guardrail import invoke as one_step

    opts = {"workdir": workdir, "aws": aws, "stack_name": stack_name, "profile": profile, "region": region}
    try:
        state, logical_id = one_step.resolve_step(step)
        doc = one_step.read_input(input_file or one_step.default_input(state))
        target = _target(opts)
        stack = stack_name if _on_aws(opts) else local_state(workdir).stack_name
        cfn, lam = target.client("cloudformation"), target.client("lambda")
        doc = one_step.fill_placeholders(doc, target.bucket, target.endpoint_name)
        if key:
            parse_upload = one_step.function_name(cfn, stack, one_step.resolve_step("ParseUpload")[1])
            doc = one_step.with_upload(doc, key, target.bucket, target.client("s3"),
                                       lambda event: one_step.call(lam, parse_upload, event))
        name = one_step.function_name(cfn, stack, logical_id)
        payload, error, log = one_step.call(lam, name, doc)
    except one_step.InvokeError as exc:
        raise CliError(str(exc)) from None
    if show_log and log:
        click.echo(log, err=True)
    if error:
        raise CliError(f"{state} ({name}) failed: {one_step.summarize_error(payload)}")
    click.echo(json.dumps(payload, indent=2, default=str))
    return 0


# ---------------------------------------------------------------- entry point


# ---------------------------------------------------------------- people in the loop (issue 15)


def _operator(opts: dict[str, Any]) -> tuple[Any, str | None]:
    """The target and its lock table (stack output TableName: approval#<execution> lives there)."""
    target = _target(opts)
    if _on_aws(opts):
        stacks = target.client("cloudformation").describe_stacks(StackName=opts["stack_name"])["Stacks"]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    else:
        outputs = local_state(opts["workdir"]).outputs
    return target, outputs.get("TableName")


def _answer(execution: str, reason: str | None, approve: bool, opts: dict[str, Any]) -> int:
    from guardrail.operator import OperatorError, decide, resolve

    target, table = _operator(opts)
    if not table:
        raise CliError("the stack has no TableName output (the lock table holds the approval requests)")
    sfn, ddb = target.client("stepfunctions"), target.client("dynamodb")
    try:
        arn = resolve(sfn, ddb, table, target.state_machine_arn, target.endpoint_name, execution)
        sent = decide(sfn, ddb, target.client("sts"), table, arn, approve, reason)
    except OperatorError as exc:
        raise CliError(str(exc)) from None
    because = f": {sent['reason']}" if sent.get("reason") else ""
    _console().print(f"{sent['decision']} the {sent['kind']} of {escape(sent['execution'])} as "
                     f"{escape(sent['decided_by'])}{escape(because)}", highlight=False)
    return 0


REASON = click.option("--reason", help="Why (in the notification, the execution's output and the report).")


@cli.command()
@click.argument("execution")
@REASON
@where_options
def approve(execution: str, reason: str | None, workdir: Path, aws: bool, stack_name: str, profile: str | None,
            region: str | None) -> int:
    """Approve what EXECUTION (ARN, name, or the endpoint's name) waits for: a shadow's promotion or an update."""
    return _answer(execution, reason, True, {"workdir": workdir, "aws": aws, "stack_name": stack_name,
                                             "profile": profile, "region": region})


@cli.command()
@click.argument("execution")
@REASON
@where_options
def reject(execution: str, reason: str | None, workdir: Path, aws: bool, stack_name: str, profile: str | None,
           region: str | None) -> int:
    """Reject it: an update is not made (NOT_APPROVED); a shadow is removed and production keeps serving."""
    return _answer(execution, reason, False, {"workdir": workdir, "aws": aws, "stack_name": stack_name,
                                              "profile": profile, "region": region})


@cli.command()
@click.argument("target_ref", metavar="ENDPOINT|EXECUTION")
@REASON
@where_options
def abort(target_ref: str, reason: str | None, workdir: Path, aws: bool, stack_name: str, profile: str | None,
          region: str | None) -> int:
    """Stop a running guarded deployment (StopExecution). A shadow test is stopped with the shadow removed, an
    update in progress is left to SageMaker (it finishes or rolls back by itself), the lock is released and
    people are notified ABORTED with the reason and what the endpoint serves."""
    from guardrail.operator import OperatorError, resolve
    from guardrail.operator import abort as stop

    opts = {"workdir": workdir, "aws": aws, "stack_name": stack_name, "profile": profile, "region": region}
    target, table = _operator(opts)
    sfn = target.client("stepfunctions")
    try:
        arn = resolve(sfn, target.client("dynamodb"), table, target.state_machine_arn, target.endpoint_name,
                      target_ref)
        done = stop(sfn, target.client("sts"), arn, reason)
    except OperatorError as exc:
        raise CliError(str(exc)) from None
    _console().print(f"aborted {escape(done['execution'])} ({escape(done['cause'])}); the ABORTED notification "
                     "says what the endpoint serves", highlight=False)
    return 0


def explain(exc: BaseException) -> str | None:
    """One line for the errors a user can fix (None: unexpected)."""
    from botocore import exceptions as bce

    from guardrail.demo import DemoError
    from guardrail.scenarios import ScenarioError
    from guardrail.traffic import TrafficError

    if isinstance(exc, bce.NoCredentialsError):
        return ('Unable to locate credentials. You can configure credentials by running "aws configure" '
                "(or pass --profile).")
    if isinstance(exc, bce.NoRegionError):
        return 'You must specify a region: --region, AWS_REGION, or "aws configure".'
    if isinstance(exc, bce.ProfileNotFound | bce.PartialCredentialsError):
        return f"{exc} (see `aws configure list-profiles`)"
    if isinstance(exc, bce.EndpointConnectionError):
        return f"{exc}: is the local cloud running (`guardrail up`), or the network reachable?"
    if isinstance(exc, bce.ClientError):
        err = exc.response.get("Error", {})
        return f"{exc.operation_name}: {err.get('Code')}: {err.get('Message')}"
    if isinstance(exc, bce.BotoCoreError):
        return str(exc)
    if isinstance(exc, DemoError | ScenarioError | TrafficError | TimeoutError | FileNotFoundError):
        return str(exc)
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("GUARDRAIL_DEBUG") == "1"
    try:
        result = cli.main(args=argv, prog_name="guardrail", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if debug:
            raise
        line = explain(exc)
        if line is None:
            line = f"unexpected {type(exc).__name__}: {exc} (`guardrail --debug ...` shows the traceback)"
        click.echo(f"guardrail: {line}", err=True)
        return 1
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
