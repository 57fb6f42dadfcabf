"""The shapes request fields take (SYS-3): integers of the JSON type only and bounded so DynamoDB stores them
exactly, text without control characters and of bounded length, ids no longer than any id we issue."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

# Minor units. IDR 10^15 is beyond any price or order, far inside DynamoDB's 38 digits and exact as the float
# the Xendit SDK takes (< 2^53); a session's whole value is held to it too, so no invoice can exceed it.
MAX_AMOUNT = 10**15
MAX_QUANTITY = 10**6
# Our ids are ~30 characters and a Cognito sub is 36; DynamoDB refuses keys above 1 024 bytes with a 500.
MAX_ID_LENGTH = 128

_NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f-\x9f]*$"
# A user id as sign-in issues them (a Cognito sub, a local token's sub): no blank, no whitespace, no control character.
USER_ID_PATTERN = r"^[^\s\x00-\x1f\x7f-\x9f]+$"
_NO_CONTROL_CHARACTERS_BUT_LINE_BREAKS = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"


def single_line(max_length: int, *, min_length: int = 1) -> type[str]:
    """A name-like text: trimmed, no control characters (a tab or line break included)."""
    return Annotated[  # type: ignore[return-value]
        str,
        StringConstraints(
            strip_whitespace=True, min_length=min_length, max_length=max_length, pattern=_NO_CONTROL_CHARACTERS
        ),
    ]


def multi_line(max_length: int) -> type[str]:
    """A description-like text: tabs and line breaks allowed, other control characters not."""
    return Annotated[  # type: ignore[return-value]
        str, StringConstraints(max_length=max_length, pattern=_NO_CONTROL_CHARACTERS_BUT_LINE_BREAKS)
    ]


ResourceId = single_line(MAX_ID_LENGTH)
Quantity = Annotated[int, Field(strict=True, ge=1, le=MAX_QUANTITY)]
Price = Annotated[int, Field(strict=True, gt=0, le=MAX_AMOUNT, description="minor units (IDR: rupiah)")]
SignedAmount = Annotated[int, Field(strict=True, ge=-MAX_AMOUNT, le=MAX_AMOUNT)]
StrictBool = Annotated[bool, Field(strict=True)]
