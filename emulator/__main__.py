"""``make run``: start the local stack on http://127.0.0.1:$PORT with demo data; Ctrl-C (or SIGTERM) stops it.

python -m emulator [--template PATH] [--port N] [--time-scale X] [--no-seed] [--json-logs]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from emulator import logs
from emulator.stack import LocalStack
from emulator.template import TEMPLATE_PATH


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=Path, default=TEMPLATE_PATH, help="SAM template (default: %(default)s)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")), help="default: $PORT or 3000")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=float(os.environ.get("LOCAL_TIME_SCALE", "1")),
        help="60 makes a minute of Wait states and schedules pass in a second (default: $LOCAL_TIME_SCALE or 1)",
    )
    parser.add_argument("--no-seed", dest="seed", action="store_false", help="start without demo data")
    parser.add_argument(
        "--json-logs",
        action="store_true",
        default=os.environ.get("LOCAL_JSON_LOGS", "") not in ("", "0", "false"),
        help="print the functions' log and metric lines as the JSON Lambda writes (default: $LOCAL_JSON_LOGS)",
    )
    return parser.parse_args(argv)


def banner(stack: LocalStack) -> str:
    lines = [
        "",
        f"Patungan local stack on {stack.url}  (time scale {stack.time_scale:g})",
        f"  API           {stack.url}/v1/...",
        f"  Swagger UI    {stack.docs_url}",
        f"  OpenAPI       {stack.url}/openapi.json",
        f"  local Xendit  {stack.xendit_url}",
        f"  local courier {stack.courier_url}",
        f'  sign in       curl -X POST {stack.url}/_local/token -d \'{{"sub": "buyer-9", "groups": ["buyer"]}}\'',
        f"  deadlines     curl -X POST {stack.url}/_local/clock/advance -d '{{\"seconds\": 7200}}'"
        "   (Step Functions Waits due in the next 2 h happen now)",
    ]
    if stack.seed is not None:
        lines += ["", "Demo users (paste a header into Swagger UI's Authorize, or curl -H):"]
        for user in stack.seed.users.values():
            lines.append(
                f"  {user.sub:<16} {','.join(user.groups):<10} Authorization: Bearer {stack.signer.issue(user)}"
            )
        lines += ["", "Seeded ids:"]
        lines += [f"  {name:<16} {value}" for name, value in stack.seed.ids.items()]
    lines.append("\nCtrl-C stops the stack.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    logs.configure(json_logs=args.json_logs)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    stack = LocalStack(args.template, args.port, args.time_scale, seed=args.seed)
    try:
        stack.start()
        print(banner(stack), flush=True)
        stopping.wait()
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
