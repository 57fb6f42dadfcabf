"""Address use cases (ACC-2): a user's own addresses only (another user's → 404), one default while they
have any.

The default: a user's first address is it; an address added or changed with ``is_default: true`` becomes it
and the previous one stops being it in the same write. Deleting the default makes the most recently added of
the remaining addresses the default (a buyer who still has addresses can check out without choosing again);
the default cannot be unset by ``is_default: false`` (make another one the default instead)."""

from __future__ import annotations

from datetime import timedelta

from patungan.accounts.models import Address, AddressInput, AddressUpdate
from patungan.accounts.repository import AddressAlreadySaved, AddressRepository, RequestKey
from patungan.core.clock import Clock, to_iso
from patungan.core.errors import Conflict, field_error
from patungan.core.ids import new_id
from patungan.core.pagination import Page
from patungan.core.retry import retry_stale

# Enough for home, office, family and a few drop points; a bound so one user cannot fill the table.
MAX_ADDRESSES_PER_USER = 50


class AddressService:
    def __init__(self, repository: AddressRepository, clock: Clock, *, request_keys_kept: timedelta) -> None:
        self.repository = repository
        self.clock = clock
        self.request_keys_kept = request_keys_kept

    def add(self, user_id: str, data: AddressInput, idempotency_key: str | None = None) -> Address:
        """A new address. With an Idempotency-Key, a retry whose first attempt saved the address (and lost its
        answer) gets that address back instead of a second one."""
        address_id = new_id("adr")

        def attempt() -> Address:
            book = self.repository.book(user_id)
            if book.count >= MAX_ADDRESSES_PER_USER:
                # A retry of the request that filled the book answers the address it saved.
                saved_id = self.repository.saved_with(user_id, idempotency_key) if idempotency_key else None
                if saved_id is not None:
                    return self.repository.get(user_id, saved_id)
                raise Conflict(
                    f"you have {MAX_ADDRESSES_PER_USER} addresses, the most one account keeps: delete one first",
                    code="address_limit_reached",
                )
            now = to_iso(self.clock.now())
            address = Address(
                id=address_id,
                **data.model_dump(exclude={"is_default"}),
                is_default=data.is_default or book.default_address_id is None,
                created_at=now,
                updated_at=now,
            )
            request = None
            if idempotency_key:
                request = RequestKey(idempotency_key, self.clock.now() + self.request_keys_kept)
            try:
                self.repository.add(book, address, request)
            except AddressAlreadySaved as saved:
                return self.repository.get(user_id, saved.address_id)
            return address

        return retry_stale(attempt)

    def get(self, user_id: str, address_id: str) -> Address:
        """The user's address; another user's is NotFound, as one that does not exist."""
        return self.repository.get(user_id, address_id)

    def list(self, user_id: str, *, limit: int, cursor: str | None) -> Page[Address]:
        return self.repository.page(user_id, limit=limit, cursor=cursor)

    def update(self, user_id: str, address_id: str, patch: AddressUpdate) -> Address:
        changes = patch.model_dump(exclude_unset=True)
        make_default = changes.pop("is_default", None)

        def attempt() -> Address:
            current = self.repository.get(user_id, address_id)
            if make_default is False and current.is_default:
                raise field_error("is_default", "this is your default address: make another address the default")
            book = None
            if make_default and not current.is_default:
                book = self.repository.book(user_id)
            if book is None and not changes:
                return current
            return self.repository.update(book, user_id, address_id, changes, to_iso(self.clock.now()))

        return retry_stale(attempt)

    def delete(self, user_id: str, address_id: str) -> None:
        def attempt() -> None:
            book = self.repository.book(user_id)
            successor = None
            if book.default_address_id == address_id:
                successor = self.repository.newest_other_than(user_id, address_id)
            self.repository.remove(book, address_id, successor, to_iso(self.clock.now()))

        retry_stale(attempt)
