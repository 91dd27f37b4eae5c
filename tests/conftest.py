"""Shared test set-up: the data and weights beside the repository, and a loopback Hub."""
from .weights_fixtures import *
from .weights_fixtures import SHARED, SHARED_DATA, SHARED_WEIGHTS  # noqa: F401  (explicit, for `from .conftest import`)
