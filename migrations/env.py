"""Alembic environment: the URL comes from the caller (`ecaf db upgrade`) or DATABASE_URL."""
from alembic import context
from sqlalchemy import create_engine

from app.config import Config
from app.db import normalise_url
from app.models import Base

config = context.config
url = normalise_url(config.get_main_option("sqlalchemy.url") or Config.from_env().database_url)


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        context.configure(connection=connectable, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
