"""Whatever balanced movements are posted, the ledger balances and every wallet holds exactly what was
credited to it minus what was debited; a wallet debit it cannot cover is refused and changes nothing
(PAY-5, WAL-1)."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patungan.core.money import allocate
from patungan.ledger import accounts
from patungan.ledger.models import Entry, Movement
from patungan.ledger.repository import InsufficientFunds, ledger
from tests.support.ledger import AT

USERS = ("usr_a", "usr_b", "usr_c")
WALLETS = {accounts.buyer_wallet(user): user for user in USERS}
ACCOUNTS = (
    *WALLETS,
    accounts.session_escrow("ses_1"),
    accounts.factory_payable("fac_1"),
    accounts.PLATFORM_REVENUE,
    accounts.GATEWAY_CLEARING,
)


@st.composite
def entries(draw) -> list[Entry]:
    """Debits on random accounts, their total credited in random shares to random accounts (the same account
    may appear on both sides or twice): a credit, a debit, a transfer, a split."""
    debits = draw(st.lists(st.tuples(st.sampled_from(ACCOUNTS), st.integers(1, 100_000)), min_size=1, max_size=3))
    credit_accounts = draw(st.lists(st.sampled_from(ACCOUNTS), min_size=1, max_size=3))
    weights = draw(st.lists(st.integers(1, 5), min_size=len(credit_accounts), max_size=len(credit_accounts)))
    shares = allocate(sum(amount for _, amount in debits), weights)
    return [Entry(account=account, debit=amount) for account, amount in debits] + [
        Entry(account=account, credit=share) for account, share in zip(credit_accounts, shares, strict=True) if share
    ]


movements = st.lists(
    entries().filter(lambda drawn: len({entry.account for entry in drawn}) >= 2), min_size=1, max_size=8
)


class ExpectedBooks:
    """What the ledger should hold: totals per account, from the movements it should have accepted."""

    def __init__(self) -> None:
        self.totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])

    def can_post(self, movement: Movement) -> bool:
        for account, change in movement.changes().items():
            debit, credit = self.totals.get(account, (0, 0))
            if account in WALLETS and change.debit - change.credit > credit - debit:
                return False
        return True

    def post(self, movement: Movement) -> None:
        for account, change in movement.changes().items():
            self.totals[account][0] += change.debit
            self.totals[account][1] += change.credit

    def wallet_balance(self, user: str) -> int:
        debit, credit = self.totals.get(accounts.buyer_wallet(user), (0, 0))
        return credit - debit


@pytest.fixture
def empty_ledger_table(aws):
    """Hypothesis runs many examples in one test: each starts from an empty Ledger table."""
    definition = aws.template.table_definitions()["LedgerTable"]

    def recreate() -> None:
        aws.dynamodb().delete_table(TableName=definition["TableName"])
        aws.dynamodb().create_table(**definition)

    return recreate


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=movements)
def test_random_movements_keep_the_ledger_balanced_and_wallets_exact(empty_ledger_table, drawn):
    empty_ledger_table()
    expected = ExpectedBooks()

    for number, movement_entries in enumerate(drawn):
        movement = Movement(id=f"adjustment:{number}", type="adjustment", entries=movement_entries, created_at=AT)
        if expected.can_post(movement):
            ledger().post(movement)
            expected.post(movement)
        else:
            before = ledger().trial_balance()
            with pytest.raises(InsufficientFunds):
                ledger().post(movement)
            assert ledger().trial_balance() == before

    trial = ledger().trial_balance()
    assert trial.balanced
    assert sum(account.balance for account in trial.accounts) == 0
    expected_totals = {account: (debit, credit, debit - credit) for account, (debit, credit) in expected.totals.items()}
    # Issue 8: each account listed once and read alike, summed over the shards its movements were spread over.
    assert [(a.account, a.debit, a.credit, a.balance) for a in trial.accounts] == [
        (account, *totals) for account, totals in sorted(expected_totals.items())
    ]
    for account, totals in expected_totals.items():
        read = ledger().account_balance(account)
        assert (read.debit, read.credit, read.balance) == totals
    for user in USERS:
        assert ledger().wallet_balance(user) == expected.wallet_balance(user) >= 0
        listed = ledger().wallet_transactions(user, 100, None).items
        assert sum(line.amount for line in listed) == expected.wallet_balance(user)
