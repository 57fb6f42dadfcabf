"""Progress lines on stderr, so that stdout holds only the figures."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Progress:
    """Picklable, for the processes the settlement runs in; time.monotonic is one clock for all of them."""

    started: float = field(default_factory=time.monotonic)
    prefix: str = ""

    def __call__(self, line: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f} s] {self.prefix}{line}", file=sys.stderr, flush=True)

    def about(self, subject: str) -> Progress:
        return replace(self, prefix=f"{self.prefix}{subject}: ")
