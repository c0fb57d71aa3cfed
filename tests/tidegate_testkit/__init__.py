"""Test helpers shared by tests/integration and tests/interop (a package on
their pytest `pythonpath`): `core` holds the helpers and fixtures for the real
binary and a real broker, `faultkit` what the fault tests add (a cuttable
proxy, a killable broker, a persistent-session subscriber)."""

from .core import *  # noqa: F401,F403
