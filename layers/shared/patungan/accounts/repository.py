"""The Accounts table: a user's addresses (``USER#user / ADDRESS#id``), their address book
(``USER#user / ADDRESS_BOOK``: how many addresses, which one is the default, a version) and, for a day, the
Idempotency-Key each address was saved with (``USER#user / ADDRESS_REQUEST#hash of the key``).

Every change to the set of addresses or to the default writes the book with a condition on the version it
read, in the same transaction as the addresses it touches: two such changes of one user never both commit
(one is refused with ConcurrentUpdate and runs again on fresh data), so the count stays exact and exactly
one address carries ``is_default`` while the user has any (ACC-2). An address's key holds its owner: another
user's id reads nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from patungan.accounts.models import Address
from patungan.adapters.dynamodb import DynamoTable, Transaction
from patungan.core.errors import ConcurrentUpdate, Conflict, NotFound
from patungan.core.ids import keyed_id
from patungan.core.pagination import Page, decode_cursor, encode_cursor

ADDRESS_PREFIX = "ADDRESS#"
BOOK = "ADDRESS_BOOK"
REQUEST_PREFIX = "ADDRESS_REQUEST#"


class AddressAlreadySaved(Conflict):
    """The request that saves the address under this Idempotency-Key committed before (its answer was lost)."""

    code = "address_already_saved"

    def __init__(self, address_id: str) -> None:
        super().__init__(f"address {address_id} was saved with this Idempotency-Key")
        self.address_id = address_id


@dataclass(frozen=True)
class RequestKey:
    """The Idempotency-Key a new address is saved with, remembered until ``expires_at``."""

    key: str
    expires_at: datetime


@dataclass(frozen=True)
class AddressBook:
    user_id: str
    version: int = 0
    count: int = 0
    default_address_id: str | None = None


def _user(user_id: str) -> str:
    return f"USER#{user_id}"


def _address_key(user_id: str, address_id: str) -> dict[str, str]:
    return {"pk": _user(user_id), "sk": f"{ADDRESS_PREFIX}{address_id}"}


def _book_key(user_id: str) -> dict[str, str]:
    return {"pk": _user(user_id), "sk": BOOK}


def _request_key(user_id: str, key: str) -> dict[str, str]:
    return {"pk": _user(user_id), "sk": f"{REQUEST_PREFIX}{keyed_id('key', key)}"}  # any length a client sends


def _address(item: dict[str, Any]) -> Address:
    return Address.model_validate({k: v for k, v in item.items() if k not in {"pk", "sk"}})


def _not_found(address_id: str) -> NotFound:
    return NotFound(f"no address {address_id}")


def _stale_book(user_id: str) -> ConcurrentUpdate:
    return ConcurrentUpdate(f"user {user_id}'s addresses changed while this request ran; retry")


class AddressRepository:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    # ---- reads
    def book(self, user_id: str) -> AddressBook:
        item = self.table.get(_book_key(user_id))
        if item is None:
            return AddressBook(user_id)
        return AddressBook(user_id, item["version"], item["count"], item.get("default_address_id"))

    def get(self, user_id: str, address_id: str) -> Address:
        item = self.table.get(_address_key(user_id, address_id))
        if item is None:
            raise _not_found(address_id)
        return _address(item)

    def page(self, user_id: str, *, limit: int, cursor: str | None) -> Page[Address]:
        result = self.table.query_page(
            "pk = :pk AND begins_with(sk, :prefix)",
            values={":pk": _user(user_id), ":prefix": ADDRESS_PREFIX},
            limit=limit,
            start_key=decode_cursor(cursor),
            consistent=True,
        )
        return Page([_address(item) for item in result.items], encode_cursor(result.last_key))

    def saved_with(self, user_id: str, key: str) -> str | None:
        """The id of the address a request with this Idempotency-Key saved (None: no such request is kept)."""
        item = self.table.get(_request_key(user_id, key))
        return item["address_id"] if item else None

    def newest_other_than(self, user_id: str, address_id: str) -> str | None:
        """The most recently added of the user's addresses but ``address_id`` (ids are time-ordered)."""
        result = self.table.query(
            "pk = :pk AND begins_with(sk, :prefix)",
            values={":pk": _user(user_id), ":prefix": ADDRESS_PREFIX},
            forward=False,
            limit=2,
            consistent=True,
        )
        others = [item["id"] for item in result.items if item["id"] != address_id]
        return others[0] if others else None

    # ---- writes: each one transaction, conditional on the book as it was read
    def add(self, book: AddressBook, address: Address, request: RequestKey | None = None) -> None:
        """The new address; when it is the default, the previous default stops being it in the same write. With
        ``request``, a second request with the same key saves nothing (AddressAlreadySaved names the first)."""
        tx = Transaction()
        if request is not None:
            tx.put(
                self.table,
                {
                    **_request_key(book.user_id, request.key),
                    "address_id": address.id,
                    "expires_at": int(request.expires_at.timestamp()),
                },
                condition="attribute_not_exists(pk)",
                on_fail=lambda old: AddressAlreadySaved(old["address_id"]),
            )
        default = address.id if address.is_default else book.default_address_id
        self._write_book(tx, book, count=book.count + 1, default_address_id=default)
        tx.put(
            self.table,
            {**_address_key(book.user_id, address.id), **address.model_dump()},
            condition="attribute_not_exists(pk)",
        )
        if address.is_default and book.default_address_id is not None:
            self._unset_default(tx, book)
        tx.commit()

    def update(
        self, book: AddressBook | None, user_id: str, address_id: str, changes: dict[str, Any], updated_at: str
    ) -> Address:
        """Change the address's fields (a None value clears the field); with ``book``, the address also becomes
        the user's default, and the one the book names stops being it, all in one transaction."""
        assignments = {name: value for name, value in changes.items() if value is not None}
        assignments["updated_at"] = updated_at
        if book is not None:
            assignments["is_default"] = True
        cleared = [name for name, value in changes.items() if value is None]
        names = {f"#{name}": name for name in [*assignments, *cleared]}
        expression = "SET " + ", ".join(f"#{name} = :{name}" for name in assignments)
        if cleared:
            expression += " REMOVE " + ", ".join(f"#{name}" for name in cleared)
        write = {
            "condition": "attribute_exists(pk)",
            "names": names,
            "values": {f":{name}": value for name, value in assignments.items()},
            "on_fail": _not_found(address_id),
        }
        key = _address_key(user_id, address_id)
        if book is None:
            return _address(self.table.update(key, expression, **write))
        tx = Transaction()
        tx.update(self.table, key, expression, **write)
        self._write_book(tx, book, count=book.count, default_address_id=address_id)
        if book.default_address_id not in (None, address_id):
            self._unset_default(tx, book)
        tx.commit()
        return self.get(user_id, address_id)

    def remove(self, book: AddressBook, address_id: str, successor_id: str | None, updated_at: str) -> None:
        """Delete the address; when it was the default, ``successor_id`` (if any) becomes the default."""
        tx = Transaction()
        tx.delete(
            self.table,
            _address_key(book.user_id, address_id),
            condition="attribute_exists(pk)",
            on_fail=_not_found(address_id),
        )
        default = book.default_address_id
        if default == address_id:
            default = successor_id
            if successor_id is not None:
                tx.update(
                    self.table,
                    _address_key(book.user_id, successor_id),
                    "SET is_default = :true, updated_at = :at",
                    condition="attribute_exists(pk)",
                    values={":true": True, ":at": updated_at},
                    on_fail=_stale_book(book.user_id),
                )
        self._write_book(tx, book, count=book.count - 1, default_address_id=default)
        tx.commit()

    def _write_book(self, tx: Transaction, book: AddressBook, *, count: int, default_address_id: str | None) -> None:
        item = {
            **_book_key(book.user_id),
            "version": book.version + 1,
            "count": count,
            "default_address_id": default_address_id,
        }
        if book.version == 0:
            tx.put(self.table, item, condition="attribute_not_exists(pk)", on_fail=_stale_book(book.user_id))
        else:
            tx.put(
                self.table,
                item,
                condition="#version = :version",
                names={"#version": "version"},
                values={":version": book.version},
                on_fail=_stale_book(book.user_id),
            )

    def _unset_default(self, tx: Transaction, book: AddressBook) -> None:
        tx.update(
            self.table,
            _address_key(book.user_id, book.default_address_id),
            "SET is_default = :false",
            condition="is_default = :true",
            values={":false": False, ":true": True},
            on_fail=_stale_book(book.user_id),
        )
