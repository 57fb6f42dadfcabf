"""The runtime permission check sees what a function really needs in AWS (issue 6, defect 8), even where one
process running every function would hide it: in Lambda each function reads the Xendit secret key under its
own role at its cold start, so a key another function already read here must not be lent to it."""

from __future__ import annotations

import pytest

from emulator import permissions
from emulator.template import Template
from tests.support import lambdas
from tests.support.groupbuy import buyer

SECRET_KEY = "arn:aws:ssm:ap-southeast-3:123456789012:parameter/patungan/xendit/secret-key"


@pytest.fixture
def leave_without_the_secret(monkeypatch):
    """The template with LeaveSessionFunction's grant on the secret key taken away."""
    template = Template.load()
    policies = template.resources["LeaveSessionFunction"]["Properties"]["Policies"]
    policies[:] = [policy for policy in policies if "Statement" not in policy]
    monkeypatch.setattr(lambdas, "function_roles", lambda: permissions.FunctionRoles(template))


def test_a_function_reads_the_secret_key_under_its_own_role_after_another_function_read_it(
    world, leave_without_the_secret
):
    session = world.session()
    world.joined(buyer(1), session["id"])  # JoinSessionFunction reads the key (and may)

    assert world.leave(buyer(1), session["id"]).status == 200  # expires the invoice at Xendit: needs the key

    assert [str(denial) for denial in permissions.take_denials()] == [
        f"LeaveSessionFunction called ssm:GetParameter on {SECRET_KEY} but its policies do not allow it"
    ]


def test_a_function_that_is_granted_the_secret_key_reads_it_unreported(world):
    session = world.session()
    world.joined(buyer(1), session["id"])

    assert world.leave(buyer(1), session["id"]).status == 200

    assert permissions.take_denials() == []
