"""Alembic migrations for every custodes table (run by :func:`custodes.store.open_store`)."""
