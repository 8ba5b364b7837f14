"""The root group and what every command shares: the app, the context, refusals, output."""

from __future__ import annotations

import functools
import getpass
import signal
import sys
import threading
from contextlib import contextmanager, nullcontext
from datetime import date, datetime

import click
import orjson
from flask import Flask, current_app
from flask.cli import ScriptInfo

from reval.app import create_app
from reval.clock import london_time
from reval.db import DatabaseBusy
from reval.designated_bodies import DesignatedBodyFileError
from reval.extensions import database
from reval.gateway import AppGateway
from reval.reconcile.sync import SyncFailed, SyncInterrupted, SyncSkipped
from reval.refusals import Refused
from reval.services.context import Actor, Context
from reval.snapshot_files import SnapshotUnreadable
from reval.tis.client import TisUnavailable
from reval.validation import InvalidValue


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="reval", prog_name="reval")
def cli():
    """Reval: reconciles GMC prescribed connections with TIS programme memberships."""


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
                with app().app_context(), terminated_as_interrupt() if stoppable else nullcontext():
                    return function(*args, **kwargs)
            except (Refused, InvalidValue, SnapshotUnreadable, DesignatedBodyFileError) as error:
                raise CommandRefused(str(error)) from None
            except (SyncFailed, SyncSkipped, DatabaseBusy) as error:
                raise click.ClickException(str(error)) from None
            except TisUnavailable as error:
                raise click.ClickException(f"TIS could not be read, nothing changed: {error}") from None
            except SyncInterrupted as error:
                click.echo(f"Error: {error}", err=True)
                sys.exit(128 + getattr(error.__cause__, "signal_number", signal.SIGINT))

        return group.command(name, **settings)(run)

    return decorate


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
    return Context(db.sessions, db.reads, Actor.operator(who(by)), AppGateway(current_app, wait_for_delivery=True))


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
