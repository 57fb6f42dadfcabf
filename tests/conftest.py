import pytest

from tests.support.aws import local_aws
from tests.support.groupbuy import group_buy_world


@pytest.fixture
def aws():
    """A fresh moto AWS with the template's tables and the functions' environment."""
    with local_aws() as stack:
        yield stack


@pytest.fixture
def world():
    """Group buying ready to go: local AWS, the local Xendit, a factory with a product."""
    with group_buy_world() as built:
        yield built
        # Issue 6: whatever a group-buying test did, the ledger still balances when it ends.
        assert built.trial_balance()["balanced"] is True
