"""The ``ntx`` command line (DESIGN.md §6): one entry point that wires every part."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from services.bootstrap import SERVICES
from shared.cliutil import each_file

#: help text for the commands that take several files
MANY = "; several files run in turn, each headed ==> FILE <== on stderr"


def _intake_evaluate(args: argparse.Namespace) -> int:
    from services.intake.cli import evaluate_command

    return each_file(args.files, lambda path: evaluate_command(path, args.as_of))


def _schedule_preview(args: argparse.Namespace) -> int:
    from services.scheduler.cli import preview

    return each_file(args.files, lambda path: preview(path, args.days))


def _alerts_replay(args: argparse.Namespace) -> int:
    from services.alerts.cli import replay

    return each_file(args.files, replay)


def _fhir_translate(args: argparse.Namespace) -> int:
    from services.gateway.cli import translate_files

    return translate_files(args.files)


def _cds_evaluate(args: argparse.Namespace) -> int:
    from services.gateway.cli import evaluate_file

    return each_file(args.files, lambda path: evaluate_file(path, args.as_of))


def _run(args: argparse.Namespace) -> int:
    from services.runner import run

    return run(args)


def _demo(args: argparse.Namespace) -> int:
    from services.demo import demo

    return demo(args)


def _send(args: argparse.Namespace) -> int:
    from services.tools import send

    return send(args.file, unchecked=args.unchecked, now=args.now)


def _simulate(args: argparse.Namespace) -> int:
    from services.simulate import simulate

    return simulate(args)


def _bench(args: argparse.Namespace) -> int:
    from services.bench import bench

    return bench(args)


def _migrate(args: argparse.Namespace) -> int:
    from services.tools import migrate

    return migrate(args.service)


def _schemas(args: argparse.Namespace) -> int:
    from pathlib import Path

    from shared.schemas import write_schemas

    for path in write_schemas(Path(args.out)):
        print(path)
    return 0


def _service(args: argparse.Namespace) -> int:
    from services.worker import run_service

    return run_service(args.name)


def _dlq(args: argparse.Namespace) -> int:
    from services import dlq

    return dlq.main(args)


def _deliveries(args: argparse.Namespace) -> int:
    from services import deliveries

    return deliveries.main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ntx", description="NTX: keep patients safely on naltrexone."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace], int], help_: str):
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(func=func)
        return p

    p = add("run", _run, "start the embedded broker and PostgreSQL, migrate, run the services")
    p.add_argument("--data-dir", default=None, help="where the embedded database lives")
    add("demo", _demo, "a short simulated treatment for a few patients, printed as a timeline")

    def add_files(group: str, about: str, name: str, func: Callable, help_: str, files: str):
        """``ntx GROUP NAME FILE...``: one of the commands that run rules on files."""
        commands = sub.add_parser(group, help=about).add_subparsers(
            dest=f"{group}_command", required=True, metavar="SUBCOMMAND"
        )
        p = commands.add_parser(name, help=help_)
        p.add_argument("files", nargs="+", metavar="FILE", help=f"{files}{MANY}")
        p.set_defaults(func=func)
        return p

    as_of = "evaluation date YYYY-MM-DD (default: today)"
    p = add_files(
        "intake",
        "intake rules",
        "evaluate",
        _intake_evaluate,
        "print the decision JSON for an intake request",
        "intake request JSON, or - for stdin",
    )
    p.add_argument("--as-of", default=None, help=as_of)
    p = add_files(
        "schedule",
        "schedule rules",
        "preview",
        _schedule_preview,
        "print the due events of a plan, in time order",
        "treatment plan JSON, or - for stdin",
    )
    p.add_argument("--days", type=int, default=28, help="days from start_date (default 28)")
    add_files(
        "alerts",
        "alert rules",
        "replay",
        _alerts_replay,
        "replay timestamped events through the alert rules",
        "JSON-lines events, or - for stdin",
    )
    add_files(
        "fhir",
        "FHIR R4 gateway, pure",
        "translate",
        _fhir_translate,
        "print the NTX events a FHIR R4 file means",
        "FHIR R4 JSON, or - for stdin",
    )
    p = add_files(
        "cds",
        "CDS Hooks, pure",
        "evaluate",
        _cds_evaluate,
        "print the cards for a CDS Hooks order-sign request",
        "CDS Hooks request JSON",
    )
    p.add_argument("--as-of", default=None, help=as_of)

    p = add("send", _send, "publish events from a file (JSON or JSON lines) to their topics")
    p.add_argument("file")
    p.add_argument(
        "--unchecked",
        action="store_true",
        help="skip validation (to exercise the dead-letter path)",
    )
    p.add_argument(
        "--now",
        action="store_true",
        help="move the file's times and dates so its newest message happens now (fresh ids)",
    )

    p = add("simulate", _simulate, "drive a synthetic cohort end to end on a simulated clock")
    p.add_argument("--patients", type=int, default=20)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--seed", type=int, default=1)

    p = add("bench", _bench, "the benchmark of issue-level targets; prints a table")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quick", action="store_true", help="a small run, for smoke checks")

    p = add("migrate", _migrate, "apply database migrations")
    p.add_argument("service", nargs="?", default="all", choices=["all", *SERVICES])

    p = add("schemas", _schemas, "write JSON Schemas and the AsyncAPI document")
    p.add_argument("--out", default="docs")

    p = add("service", _service, "run one service in the foreground (used by ntx run and images)")
    p.add_argument("name", choices=SERVICES)

    p = add("dlq", _dlq, "inspect and replay dead letters")
    dsub = p.add_subparsers(dest="dlq_command", required=True, metavar="SUBCOMMAND")
    dsub.add_parser("list", help="list dead letters")
    r = dsub.add_parser("replay", help="re-submit one dead letter, as it was or corrected")
    r.add_argument("id")
    r.add_argument("--file", default=None, help="a corrected message to send instead")

    p = add("deliveries", _deliveries, "inspect and retry webhook deliveries")
    wsub = p.add_subparsers(dest="deliveries_command", required=True, metavar="SUBCOMMAND")
    wsub.add_parser("list", help="list pending and failed deliveries")
    r = wsub.add_parser("retry", help="attempt a failed delivery again")
    r.add_argument("id", help="the notification id (the webhook-id)")
    r.add_argument("--endpoint", default=None, help="only the delivery to this endpoint")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (``| head``): stop quietly, as other filters do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
