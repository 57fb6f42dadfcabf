"""The in-process Lambda runtime.

Every invocation - API request, Function URL, Step Functions task, EventBridge target, event-source mapping,
direct Invoke through moto - imports the function's handler module by file path and calls it here, with the
function's environment and a Lambda context, one invocation at a time.

Layers are on sys.path, as in Lambda; the CodeUri folder is not (Lambda's /var/task is): one process holds
every function, so two folders' same-named helper modules would collide. Shared code belongs in the layer.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import boto3

from emulator import permissions
from emulator.template import REGION, FunctionSpec, Template

logger = logging.getLogger(__name__)

# Powertools keeps the current event on the resolver class, process-wide: two invocations at once in one
# process leaked one request's body into another. Re-entrant, because a handler may invoke another function.
INVOCATION_LOCK = threading.RLock()


class FunctionNotFound(LookupError):
    pass


@dataclass(frozen=True)
class Invocation:
    """What a handler returned (as JSON would carry it), or Lambda's error document when it raised."""

    payload: Any
    errored: bool = False

    def to_json(self) -> str:
        return json.dumps(self.payload)


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    _started: float = field(default_factory=time.monotonic)

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"local/[{self.function_version}]{self.aws_request_id}"

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self._started
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


@contextmanager
def environment_overlay(variables: Mapping[str, str]) -> Iterator[None]:
    """Set ``variables`` in os.environ for the duration, then put back exactly what was there."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def error_document(exc: BaseException) -> dict[str, Any]:
    """The payload Lambda returns for a handler that raised; Step Functions matches Catch on errorType."""
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


class LambdaRuntime:
    def __init__(
        self,
        template: Template,
        base_environment: Mapping[str, str],
        adopt_environment: Callable[[], None] = lambda: None,
    ) -> None:
        self.functions = template.functions()
        self._base_environment = dict(base_environment)
        self._configured: dict[str, str] = {}
        self._modules: dict[str, ModuleType] = {}
        # In Lambda each function reads its own environment at its cold start (settings, the service name of
        # its logs); here one process runs them all, so that is read again whenever another function runs.
        self._adopt_environment = adopt_environment
        self._current: str | None = None
        # moto enforces no IAM: each call a function makes is checked against its template Policies here.
        self._roles = permissions.FunctionRoles(template)
        permissions.install()
        # A python3.12 layer is on sys.path in Lambda (/opt/python); here its source folder is.
        for path in map(str, template.layer_paths()):
            if path not in sys.path:
                sys.path.insert(0, path)

    def configure(self, variables: Mapping[str, str]) -> None:
        """Set ``variables`` in every function's environment from its next invocation, over what the template
        gives (as a deployment's parameters would: the seed names resources the template cannot know)."""
        with INVOCATION_LOCK:
            self._configured.update(variables)

    def function(self, name_or_arn: str) -> FunctionSpec:
        """The function a name, an ARN or a qualified ARN (``...:function:Name:$LATEST``) refers to."""
        name = name_or_arn.split(":function:", 1)[-1].split(":", 1)[0]
        try:
            return self.functions[name]
        except KeyError:
            raise FunctionNotFound(f"no function {name!r} in the template") from None

    def handler_module(self, logical_id: str) -> ModuleType:
        spec = self.function(logical_id)
        with INVOCATION_LOCK, environment_overlay(self._environment_of(spec)):
            return self._module(spec)

    def invoke(self, name_or_arn: str, event: Any) -> Invocation:
        spec = self.function(name_or_arn)
        context = LambdaContext(spec.function_name, spec.memory_size, spec.arn, spec.timeout)
        with INVOCATION_LOCK:
            caller = self._current  # a function invoked from inside another one (a stream write) returns to it
            try:
                with environment_overlay(self._environment_of(spec)):
                    self._switch_to(spec.logical_id)
                    try:
                        with permissions.acting_as(self._roles, spec.logical_id):
                            handler = getattr(self._module(spec), spec.handler_name)
                            result = handler(event, context)
                        return Invocation(json.loads(json.dumps(result)))
                    except Exception as exc:  # the handler's failure is the invocation's result, as in Lambda
                        logger.error("%s failed: %s: %s", spec.logical_id, type(exc).__name__, exc, exc_info=exc)
                        return Invocation(error_document(exc), errored=True)
            finally:
                self._switch_to(caller)

    def _switch_to(self, logical_id: str | None) -> None:
        if logical_id != self._current:
            self._current = logical_id
            self._adopt_environment()

    def _environment_of(self, spec: FunctionSpec) -> dict[str, str]:
        return {
            **self._base_environment,
            **spec.environment,
            **self._configured,
            "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "LAMBDA_TASK_ROOT": str(spec.code_uri),
            "_HANDLER": spec.handler,
        }

    def _module(self, spec: FunctionSpec) -> ModuleType:
        """The handler's module, imported once per function under a name of its own (two functions may both
        have a ``handler.py``), as a cold start would import it."""
        if spec.logical_id in self._modules:
            return self._modules[spec.logical_id]
        module_name = f"lambda_function_{spec.logical_id}"
        module_spec = importlib.util.spec_from_file_location(module_name, spec.module_file)
        if module_spec is None or module_spec.loader is None:
            raise FunctionNotFound(f"{spec.logical_id}: no handler module at {spec.module_file}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        try:
            module_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[module_name]
            raise
        self._modules[spec.logical_id] = module
        return module


class AsyncInvoker:
    """Lambda's asynchronous invocation (how EventBridge invokes): queued, run on a worker thread, retried
    as the function's EventInvokeConfig says (twice by default), then sent to its OnFailure destination."""

    def __init__(self, runtime: LambdaRuntime) -> None:
        self._runtime = runtime
        self._workers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="lambda-async")

    def submit(self, name_or_arn: str, event: Any) -> None:
        self._workers.submit(self._invoke, self._runtime.function(name_or_arn), event)

    def close(self) -> None:
        self._workers.shutdown(wait=True, cancel_futures=True)

    def _invoke(self, spec: FunctionSpec, event: Any) -> None:
        attempts = 1 + int(spec.event_invoke_config.get("MaximumRetryAttempts", 2))
        for attempt in range(1, attempts + 1):
            invocation = self._runtime.invoke(spec.logical_id, event)
            if not invocation.errored:
                return
            logger.warning(
                "asynchronous invocation of %s failed (attempt %d of %d)", spec.logical_id, attempt, attempts
            )
        destination = spec.event_invoke_config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        logger.error("%s failed %d times; the event goes to %s", spec.logical_id, attempts, destination or "nowhere")
        if destination:
            try:
                self._send_on_failure(destination, spec, event, invocation, attempts)
            except Exception:  # a worker thread has nobody to raise to
                logger.exception("the OnFailure record of %s could not be sent to %s", spec.logical_id, destination)

    @staticmethod
    def _send_on_failure(
        destination: str, spec: FunctionSpec, event: Any, invocation: Invocation, attempts: int
    ) -> None:
        if destination.split(":")[2] != "sqs":
            logger.warning("the local stack sends OnFailure records to SQS only, not to %s", destination)
            return
        record = {
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(),
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": f"{spec.arn}:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": attempts,
            },
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": invocation.payload,
        }
        sqs = boto3.client("sqs", region_name=REGION)
        queue_url = sqs.get_queue_url(QueueName=destination.rsplit(":", 1)[1])["QueueUrl"]
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(record))


_active: LambdaRuntime | None = None


def activate(runtime: LambdaRuntime | None) -> None:
    """Make ``runtime`` the one ``invoke`` uses (the local stack does this when it starts and stops)."""
    global _active  # noqa: PLW0603 - one local stack runs per process
    _active = runtime


def invoke(function_logical_id: str, event: Any) -> Invocation:
    """Invoke a function of the running local stack in-process (for tests and tools)."""
    if _active is None:
        raise RuntimeError("no local stack is running in this process")
    return _active.invoke(function_logical_id, event)
