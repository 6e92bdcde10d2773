"""Interop tests (a package, so that its conftest does not take the module name `conftest`
from tests/blackbox/conftest.py, whose tests import helpers from it by that name)."""
