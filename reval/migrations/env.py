"""Alembic runs on the connection Reval hands it, inside Reval's transaction (see
reval.db.upgrade_schema), or else in a transaction of its own on the engine it hands it."""

from contextlib import nullcontext

from alembic import context

from reval.models import Base

given = context.config.attributes.get("connection")
with nullcontext(given) if given is not None else context.config.attributes["engine"].begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
