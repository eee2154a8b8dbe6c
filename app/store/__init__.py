"""Persistence: SQLAlchemy models, engine, migrations, token cipher."""
