import pytest

from tests.support.aws import local_aws


@pytest.fixture
def aws():
    """A fresh moto AWS with the template's tables and the functions' environment."""
    with local_aws() as stack:
        yield stack
