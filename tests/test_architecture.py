"""The shape of the house: Alembic owns a schema that matches the models; layers import downwards."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from reval.db import make_engine
from reval.models import Base

ROOT = Path(__file__).parent.parent


def test_migrations_build_exactly_the_models_schema(migrated):
    engine = make_engine(migrated)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == []


def test_layers_import_only_downwards():
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports"))], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
