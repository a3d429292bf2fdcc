# Generated from tests/client/_async/__init__.py by scripts/unasync.py: do not edit by hand.
# Edit the async source and run `nox -s unasync`.
