import pytest
from hypothesis import settings

from emulator import permissions
from tests.support.aws import local_aws
from tests.support.groupbuy import group_buy_world

# No test depends on how fast the machine is: Hypothesis' per-example deadline (200 ms) failed a phone test whose
# first example loaded phonenumbers' metadata while the other test process held the second core.
settings.register_profile("patungan", deadline=None)
settings.load_profile("patungan")


@pytest.fixture(autouse=True)
def functions_stay_within_their_policies():
    """Defect 8: moto enforces no IAM, so every AWS call a function made during the test is checked against
    its template Policies (emulator/permissions.py); one the role would refuse in AWS fails the test."""
    yield
    denied = permissions.take_denials()
    if denied:
        pytest.fail("AccessDenied in AWS:\n" + "\n".join(f"  {denial}" for denial in denied), pytrace=False)


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
