"""Alembic migrations, shipped inside the package so `siyu migrate` works wherever siyu is installed."""
