"""The root group and what every command shares: the app, the context, refusals, output."""

from __future__ import annotations

import functools
import getpass
import signal
import sys
import threading
import traceback
from contextlib import contextmanager, nullcontext
from datetime import date, datetime

import click
import orjson
from flask import Flask, current_app
from flask.cli import ScriptInfo

from reval import logs
from reval.app import create_app
from reval.clock import london_time
from reval.db import DatabaseBusy, DatabaseUnavailable
from reval.designated_bodies import DesignatedBodyFileError
from reval.extensions import database
from reval.gateway import AppGateway
from reval.refusals import Refused
from reval.services.context import Actor, Context
from reval.services.terms import DryRunBusy, DryRunFailed, SyncFailed, SyncInterrupted, SyncSkipped
from reval.snapshot_files import SnapshotUnreadable
from reval.tis.client import TisUnavailable
from reval.validation import InvalidValue

DEBUG = "reval.debug"  # the key of --debug in the click context's meta


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="reval", prog_name="reval")
@click.option(
    "--debug",
    is_flag=True,
    envvar="REVAL_DEBUG",
    help="Show the traceback of an error as well as its one line (or set REVAL_DEBUG=1).",
)
@click.pass_context
def cli(ctx, debug):
    """Reval: reconciles GMC prescribed connections with TIS programme memberships."""
    ctx.meta[DEBUG] = debug


def main() -> None:
    cli.main(prog_name="reval")


class CommandRefused(click.ClickException):
    """A one-line refusal with exit status 2: bad input, nothing changed."""

    exit_code = 2


def command(group: click.Group = cli, name: str | None = None, stoppable: bool = False, **settings):
    """A command that runs inside the app, answering refusals with one line and exit status 2
    (and a failed or skipped sync, an unreadable TIS or a database a sync holds with exit status 1),
    never a traceback. ``stoppable``: SIGTERM stops it as Ctrl-C does, so a sync it runs is recorded
    as interrupted."""

    def decorate(function):
        @functools.wraps(function)
        def run(*args, **kwargs):
            try:
                logs.request_id.set(logs.request_id_from(None))  # this command's lines, and the tasks it sends
                logs.actor.set(f"cli:{who(None)}")
                with app().app_context(), terminated_as_interrupt() if stoppable else nullcontext():
                    return function(*args, **kwargs)
            except (click.ClickException, click.exceptions.Exit, click.Abort):
                raise
            except BrokenPipeError:
                # The reader stopped early (`reval runs | head`): click ends quietly with exit 1.
                raise
            except SyncInterrupted as error:
                click.echo(f"Error: {error}", err=True)
                sys.exit(128 + getattr(error.__cause__, "signal_number", signal.SIGINT))
            except Exception as error:
                if click.get_current_context().meta.get(DEBUG):
                    traceback.print_exc()
                raise one_line_error(error) from None

        return group.command(name, **settings)(run)

    return decorate


def one_line_error(error: Exception) -> click.ClickException:
    """What a command says of an error, in one line: exit 2 for a refusal (bad input or a wrong
    setting, nothing changed), 1 for a failure (a sync failed, a service is down)."""
    if isinstance(error, (Refused, InvalidValue, SnapshotUnreadable, DesignatedBodyFileError)):
        return CommandRefused(str(error))
    if isinstance(error, (SyncFailed, SyncSkipped, DryRunBusy, DryRunFailed, DatabaseBusy, DatabaseUnavailable)):
        return click.ClickException(str(error))
    if isinstance(error, TisUnavailable):
        return click.ClickException(f"TIS could not be read, nothing changed: {error}")
    if (
        isinstance(error, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError))
        and error.filename
    ):
        return CommandRefused(f"cannot use {error.filename}: {error.strerror}")
    lines = str(error).strip().splitlines()
    cause = f"{type(error).__name__}: {lines[0][:200]}" if lines else type(error).__name__
    return click.ClickException(f"unexpected error ({cause}); run with --debug for the traceback")


class Terminated(KeyboardInterrupt):
    """SIGTERM received: stops the command where it is, as Ctrl-C would."""

    signal_number = signal.SIGTERM


@contextmanager
def terminated_as_interrupt():
    """SIGTERM (kill, systemd's and cron's stop) raises Terminated instead of ending the process
    at once, so what the command was doing is rolled back and recorded, as for Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(_signum, _frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def app() -> Flask:
    """The command's app: the test runner's (it passes a ScriptInfo), else one from the settings."""
    root = click.get_current_context().find_root()
    if not isinstance(root.obj, ScriptInfo):
        root.obj = ScriptInfo(create_app=create_app, set_debug_flag=False)
    return root.obj.load_app()


def context(by: str | None = None) -> Context:
    """The operator at this terminal acting (recorded as ``by``, default their user name); GMC
    requests are delivered here and now, so the command can say what GMC answered."""
    db = database()
    return Context(
        db.sessions, db.reads, Actor.operator(who(by), who(None)), AppGateway(current_app, wait_for_delivery=True)
    )


def who(by: str | None) -> str:
    if by:
        return by
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


AS_OF = click.DateTime(formats=["%Y-%m-%d"])


def day(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


def moment(value: datetime) -> str:
    """A moment as people in London read it: 2026-07-01 00:30 BST."""
    return f"{london_time(value):%Y-%m-%d %H:%M %Z}"


def print_json(value) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")
