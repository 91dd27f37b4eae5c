"""Shared test set-up: the data and weights beside the repository, and a loopback Hub."""
from .weights_fixtures import *  # noqa: F401,F403  (fixtures are found by name)
from .weights_fixtures import SHARED, SHARED_DATA, SHARED_WEIGHTS  # noqa: F401  (explicit, for `from .conftest import`)
