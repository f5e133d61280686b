"""`guardrail`: train, run the local cloud, the demo, replay a saved event, show status, build a report.

Local commands talk to the local cloud described by `.guardrail/cloud.json` (`guardrail up`); `--aws`
talks to a stack deployed with SAM, with credentials and region from the usual AWS chain.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from rich.console import Console
from rich.table import Table

DEFAULT_MODELS = Path("artifacts/models")
DEFAULT_WORKDIR = Path(".guardrail")
console = Console(soft_wrap=True)  # ARNs and S3 URIs stay on one line (copy-paste)


def _target(args: argparse.Namespace) -> Any:
    from local.demo import Target

    if getattr(args, "aws", False):
        if not args.stack_name:
            raise SystemExit("--aws needs --stack-name (the stack deployed with `sam deploy`)")
        return Target.aws(args.stack_name)
    try:
        return Target.local(args.workdir)
    except FileNotFoundError as exc:
        raise SystemExit(str(exc)) from None


def _add_where(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="local cloud state folder")
    parser.add_argument("--aws", action="store_true", help="use real AWS instead of the local cloud")
    parser.add_argument("--stack-name", default="guardrail", help="with --aws: the SAM stack")


# ---------------------------------------------------------------- commands


def cmd_train(rest: list[str]) -> int:
    try:
        from training.cli import main as train_main
    except ImportError as exc:
        raise SystemExit(f"training is not available: {exc}") from None
    return int(train_main(rest) or 0)


def cmd_cloud(command: str, rest: list[str]) -> int:
    from local.cloud import main as cloud_main

    return cloud_main([command, *rest])


def cmd_demo(args: argparse.Namespace) -> int:
    from local.demo import run_demo

    return run_demo(
        models_dir=args.models, reports_dir=args.reports, workdir=args.workdir, only=args.only,
        train=not args.no_train, trials=args.trials, console=console,
    )


def cmd_replay(args: argparse.Namespace) -> int:
    from local import scenarios
    from local.demo import find_execution, wait_for

    event_path = Path(args.event)
    if not event_path.is_file():
        raise SystemExit(f"no such event file: {event_path}")
    try:
        event = json.loads(event_path.read_text())
        detail = event["detail"]
    except (ValueError, KeyError, TypeError) as exc:
        raise SystemExit(f"{event_path} is not an EventBridge event: {exc!r}") from None
    target = _target(args)
    sfn = target.client("stepfunctions")
    machine = args.state_machine_arn or target.state_machine_arn
    scenario = scenarios.BY_KEY.get(event_path.stem)
    # The saved events carry a placeholder bucket: point them at the stack's.
    if isinstance(detail.get("bucket"), dict):
        detail["bucket"]["name"] = target.bucket
        event["resources"] = [f"arn:aws:s3:::{target.bucket}"]
    key = (detail.get("object") or {}).get("key")
    is_upload = isinstance(key, str) and key.startswith(target.model_prefix) and key.endswith("/model.tar.gz")
    since = datetime.now(UTC)

    def start_directly() -> str:
        name = f"replay-{event_path.stem}-{int(time.time() * 1000)}"[:80]
        return sfn.start_execution(stateMachineArn=machine, name=name, input=json.dumps(event))["executionArn"]

    if not is_upload:
        # A malformed event never matches the rule: it goes straight to the state machine (events/README.md).
        arn = start_directly()
    elif args.aws:
        # EventBridge refuses PutEvents with an aws.* source: on AWS a replay starts the execution, with the
        # identity of the object as it is in the bucket now.
        try:
            head = target.client("s3").head_object(Bucket=target.bucket, Key=key)
            detail["object"].update({"etag": head["ETag"].strip('"'), "version-id": head.get("VersionId")})
        except ClientError as exc:  # the execution then reports the missing artifact itself
            console.print(f"[yellow]cannot read s3://{target.bucket}/{key}: {exc}[/yellow]")
        arn = start_directly()
    elif scenario is not None:
        # Locally: stage the scenario's files into the stack's bucket; the tarball upload is the trigger.
        head = scenarios.stage(target.client("s3"), target.bucket, scenario, args.models, target.model_prefix)
        console.print(f"uploaded s3://{target.bucket}/{head['key']}")
        arn = find_execution(sfn, machine, head["key"], since, timeout=30)
    else:
        # An upload we have no artifacts for: put the event on the bus as S3 would.
        answer = target.client("events").put_events(Entries=[{
            "Source": event.get("source", "aws.s3"), "DetailType": event.get("detail-type", "Object Created"),
            "Detail": json.dumps(detail), "Resources": event.get("resources", []),
        }])
        if answer.get("FailedEntryCount"):
            raise SystemExit(f"put_events refused the event: {answer['Entries']}")
        arn = find_execution(sfn, machine, key, since, timeout=30)
    console.print(f"execution {arn}")
    if args.no_wait:
        return 0
    doc = wait_for(sfn, arn, timeout=args.timeout)
    outcome = doc.get("outcome")
    error = doc.get("error") or {}
    console.print(f"outcome [bold]{outcome}[/bold]" + (f" ({error.get('Error')})" if error else ""))
    if args.report:
        from local.report import write_report

        path = write_report(arn, Path(args.reports) / f"{event_path.stem}.html", target.client)
        console.print(f"report {path}")
    expected = scenario.expected if scenario else ("FAILED" if not is_upload else None)
    if expected and outcome != expected:
        console.print(f"[red]expected {expected}[/red]")
        return 1
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from local.demo import alarm_states, endpoint_view

    target = _target(args)
    sm, sfn, cw = target.client("sagemaker"), target.client("stepfunctions"), target.client("cloudwatch")
    view = endpoint_view(sm, target.endpoint_name)
    table = Table(title=f"endpoint {target.endpoint_name}", show_header=False)
    table.add_row("status", view.status or "(no endpoint)")
    table.add_row("config", view.config or "—")
    table.add_row("pending config", view.pending_config or "—")
    table.add_row("variants (weight)", ", ".join(f"{k} {v:.2f}" for k, v in view.weights.items()) or "—")
    table.add_row("shadow variants", ", ".join(view.shadow) or "—")
    table.add_row("failure reason", view.failure_reason or "—")
    console.print(table)
    alarms = Table(title="alarms")
    alarms.add_column("alarm")
    alarms.add_column("state")
    for name, state in sorted(alarm_states(cw, target.endpoint_name).items()):
        alarms.add_row(name, f"[red]{state}[/red]" if state == "ALARM" else state)
    console.print(alarms)
    runs = Table(title="last executions")
    for column in ("started (UTC)", "name", "status", "outcome"):
        runs.add_column(column)
    executions = sfn.list_executions(stateMachineArn=target.state_machine_arn, maxResults=args.last)["executions"]
    for ex in sorted(executions, key=lambda e: e["startDate"], reverse=True)[: args.last]:
        output = sfn.describe_execution(executionArn=ex["executionArn"]).get("output")
        outcome = (json.loads(output).get("outcome") if output else None) or "—"
        runs.add_row(ex["startDate"].astimezone(UTC).strftime("%H:%M:%S"), ex["name"], ex["status"], outcome)
    console.print(runs)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from local.report import ReportError, write_report

    target_client = None
    if not args.aws:
        from local.env import client, load_env

        try:
            env = load_env(args.workdir)
        except FileNotFoundError as exc:
            raise SystemExit(str(exc)) from None
        def target_client(service: str) -> Any:
            return client(service, env)
    try:
        path = write_report(args.execution_arn, args.out, client=target_client, period=args.period)
    except ReportError as exc:
        raise SystemExit(str(exc)) from None
    console.print(f"report written to {path}")
    return 0


# ---------------------------------------------------------------- parsing


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="guardrail", description=__doc__.split("\n\n")[0])
    sub = top.add_subparsers(dest="command", required=True)
    sub.add_parser("train", help="train the models (arguments go to training.cli)", add_help=False)
    sub.add_parser("up", help="run the local cloud in the foreground (arguments go to local.cloud up)",
                   add_help=False)
    sub.add_parser("down", help="stop the local cloud", add_help=False)

    demo = sub.add_parser("demo", help="train or reuse models, start the local cloud, run every scenario")
    demo.add_argument("--models", type=Path, default=DEFAULT_MODELS)
    demo.add_argument("--reports", type=Path, default=Path("reports"))
    demo.add_argument("--workdir", type=Path, default=Path(".guardrail/demo"))
    demo.add_argument("--only", nargs="+", metavar="SCENARIO", help="run only these scenarios (in table order)")
    demo.add_argument("--no-train", action="store_true", help="use the models in --models as they are")
    demo.add_argument("--trials", type=int, default=None, help="tuning trials when training")

    replay = sub.add_parser("replay", help="replay a saved event (events/<scenario>.json)")
    replay.add_argument("event")
    _add_where(replay)
    replay.add_argument("--state-machine-arn", help="start this state machine directly with the event")
    replay.add_argument("--models", type=Path, default=DEFAULT_MODELS, help="artifacts to stage (local)")
    replay.add_argument("--no-wait", action="store_true")
    replay.add_argument("--timeout", type=float, default=300)
    replay.add_argument("--report", action="store_true", help="write an HTML report when done")
    replay.add_argument("--reports", type=Path, default=Path("reports"))

    status = sub.add_parser("status", help="endpoint, config, variants, alarms, last executions")
    _add_where(status)
    status.add_argument("--last", type=int, default=10)

    report = sub.add_parser("report", help="HTML report of one execution")
    report.add_argument("execution_arn")
    report.add_argument("--out", type=Path)
    report.add_argument("--period", type=int, help="metric period in seconds (default: from the duration)")
    _add_where(report)
    return top


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # train/up/down hand their arguments to their owners' parsers untouched.
    if argv and argv[0] == "train":
        return cmd_train(argv[1:])
    if argv and argv[0] in ("up", "down"):
        return cmd_cloud(argv[0], argv[1:])
    args = parser().parse_args(argv)
    handlers = {"demo": cmd_demo, "replay": cmd_replay, "status": cmd_status, "report": cmd_report}
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
