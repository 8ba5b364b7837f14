"""The API: `reval token` (a development token) and `reval openapi` (its document)."""

from __future__ import annotations

import click
from flask import current_app

from reval.api.tokens import SCOPES, TokenSettings, dev_key, mint_dev_token
from reval.cli.base import CommandRefused, command, context
from reval.extensions import settings as reval_settings
from reval.services.access import visible_body

MAX_MINUTES = 24 * 60


@command()
@click.option("--name", required=True, help="Who the token speaks for (recorded beside what they do).")
@click.option("--scope", default="reval.read", show_default=True, help=f"Space-separated scopes: {', '.join(SCOPES)}.")
@click.option(
    "--designated-body", "bodies", multiple=True, help="A designated body the token may see (repeat for several)."
)
@click.option(
    "--minutes", default=60, show_default=True, type=click.IntRange(1, MAX_MINUTES), help="How long it lasts."
)
def token(name, scope, bodies, minutes):
    """Print an API token signed by this instance's development key (only with REVAL_AUTH=dev)."""
    settings = TokenSettings.from_settings(reval_settings())
    if not settings.dev:
        raise CommandRefused(
            "development tokens exist only with REVAL_AUTH=dev; in production a token comes from "
            "the identity provider (the client-credentials grant)"
        )
    scopes = scope.split()
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise CommandRefused(f"scope {' '.join(unknown) or scope!r} is not one of {', '.join(SCOPES)}")
    with context().reads() as session:
        codes = [visible_body(session, context().actor, body).code for body in bodies]
    click.echo(mint_dev_token(dev_key(current_app.instance_path), settings, name, " ".join(scopes), codes, minutes))


@command()
def openapi():
    """Print the API's OpenAPI document, as docs/openapi.json holds it (`reval openapi > docs/openapi.json`)."""
    from reval.api import openapi_document

    click.echo(openapi_document(current_app), nl=False)
