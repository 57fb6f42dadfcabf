"""The local stack: template.yaml running on this machine - moto for AWS, the handlers in-process, one HTTP
server in front - with no AWS account and no Docker.

    with LocalStack(template_path, port=0, time_scale=60) as stack:
        requests.get(f"{stack.url}/_local/health")
"""

from __future__ import annotations

import json
import logging
import os
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import boto3
from moto import mock_aws
from moto.core.config import DefaultConfig

from emulator import moto_patches, permissions, runtime
from emulator.apigateway import RestApi
from emulator.clock import ExecutionClock
from emulator.courier import DEFAULT_WEBHOOK_TOKEN as DEFAULT_COURIER_WEBHOOK_TOKEN
from emulator.courier import LocalCourier
from emulator.deploy import deploy
from emulator.events import RuleScheduler, TargetDelivery, deploy_rules, rule_specs
from emulator.gateway import HttpServer, LocalGateway
from emulator.openapi import DOCS_PATH, OpenApiDocument
from emulator.pollers import EventSourceMappings, StreamWrites
from emulator.runtime import AsyncInvoker, LambdaRuntime, environment_overlay
from emulator.seed import Seed, run_seed
from emulator.template import REGION, TEMPLATE_PATH, Template
from emulator.tokens import TokenSigner

if TYPE_CHECKING:
    from emulator.xendit import LocalXendit

logger = logging.getLogger(__name__)

MOTO_CONFIG: DefaultConfig = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
FAKE_AWS_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_SESSION_TOKEN": "local",
    "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here
}
LOCAL_XENDIT_SECRET_KEY = "xnd_development_LOCAL_FAKE_KEY_not_a_secret"  # noqa: S105 - a fake, on purpose
DEFAULT_CALLBACK_TOKEN = "local-callback-token"  # noqa: S105 - the documented local default
XENDIT_PATH = "/_xendit"
LOCAL_COURIER_API_KEY = "biteship_local.LOCAL_FAKE_KEY_not_a_secret"  # a fake, on purpose
COURIER_PATH = "/_courier"


class LocalStack:
    def __init__(
        self,
        template_path: Path = TEMPLATE_PATH,
        port: int = 3000,
        time_scale: float = 1.0,
        *,
        seed: bool = True,
        host: str = "127.0.0.1",
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.template_path = Path(template_path)
        self.time_scale = time_scale
        self.signer = TokenSigner()
        self.seed: Seed | None = None
        self._seed_enabled = seed
        self._host, self._port = host, port
        self._callback_token = os.environ.get("XENDIT_CALLBACK_TOKEN", DEFAULT_CALLBACK_TOKEN)
        self._courier_webhook_token = os.environ.get("COURIER_WEBHOOK_TOKEN", DEFAULT_COURIER_WEBHOOK_TOKEN)
        self._server: HttpServer | None = None
        self._gateway: LocalGateway | None = None
        self._scheduler: RuleScheduler | None = None
        self._async_invoker: AsyncInvoker | None = None
        self._pollers: EventSourceMappings | None = None
        self._xendit: LocalXendit | None = None
        self._courier: LocalCourier | None = None
        self._clock: ExecutionClock | None = None
        self._aws = ExitStack()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the local stack is not started")
        return self._server.url

    @property
    def docs_url(self) -> str:
        return f"{self.url}{DOCS_PATH}"

    @property
    def xendit_url(self) -> str:
        return f"{self.url}{XENDIT_PATH}"

    @property
    def courier_url(self) -> str:
        return f"{self.url}{COURIER_PATH}"

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        self._server = HttpServer(self._host, self._port)  # bound now: the URL goes into the template
        template = Template.load(
            self.template_path, {"XenditApiUrl": self.xendit_url, "CourierApiUrl": self.courier_url}
        )
        # Functions of public routes verify a bearer token themselves, with the key this stack signs with.
        lambda_runtime = LambdaRuntime(
            template,
            {**FAKE_AWS_ENVIRONMENT, "LOCAL_TOKEN_SECRET": self.signer.secret},
            _adopt_function_environment,
        )
        rules = rule_specs(template)
        self._async_invoker = AsyncInvoker(lambda_runtime)
        delivery = TargetDelivery(self._async_invoker)
        self._scheduler = RuleScheduler(rules, delivery, self.time_scale)
        rest_api = RestApi(template, lambda_runtime, self.signer)
        self._gateway = LocalGateway(
            rest_api,
            lambda_runtime,
            self.signer,
            self._scheduler,
            OpenApiDocument(rest_api.routes, lambda_runtime),
            groups=_user_pool_groups(template),
            advance_clock=self.advance_clock,
        )
        self._xendit = _local_xendit(self._callback_token, self.url, self.time_scale)
        mounts = {XENDIT_PATH: self._xendit.wsgi_app} if self._xendit is not None else {}
        self._courier = LocalCourier(webhook_base_url=self.url, webhook_token=self._courier_webhook_token)
        mounts[COURIER_PATH] = self._courier.wsgi_app
        self._server.start(self._gateway.wsgi, mounts)  # /_local/health answers 503 until ready

        # Torn down in reverse: executions stopped, patches undone, moto stopped, environment restored.
        self._aws.enter_context(environment_overlay(FAKE_AWS_ENVIRONMENT))
        self._aws.enter_context(mock_aws(config=MOTO_CONFIG))
        stream_writes = StreamWrites()
        patches = moto_patches.install(
            run_function=_run_function(lambda_runtime),
            deliver_event=delivery.deliver,
            time_scale=self.time_scale,
            stream_written=stream_writes.announce,
        )
        self._clock = patches.clock
        self._aws.callback(patches.undo)
        self._aws.callback(_stop_running_executions)
        _forget_cached_clients()

        deploy(
            template,
            {
                "XenditSecretKeyParameter": LOCAL_XENDIT_SECRET_KEY,
                "XenditCallbackTokenParameter": self._callback_token,
                "CourierApiKeyParameter": LOCAL_COURIER_API_KEY,
                "CourierWebhookTokenParameter": self._courier_webhook_token,
            },
        )
        deploy_rules(boto3.client("events", region_name=REGION), rules)
        self._pollers = EventSourceMappings(template, lambda_runtime, self.time_scale, stream_writes)
        self._pollers.start()
        runtime.activate(lambda_runtime)
        if self._seed_enabled:
            self.seed = run_seed(rest_api)
            lambda_runtime.configure(self.seed.environment)
        self._scheduler.start()  # scheduled jobs start with a complete stack, not in the middle of the seed
        self._gateway.ready.set()
        logger.info("local stack ready on %s", self.url)

    def advance_clock(self, seconds: float) -> int:
        """Move the clock of every running Step Functions execution ``seconds`` ahead, so the Wait states
        (deadlines, near-expiry, retries) due by then end now; how many executions there were."""
        if self._clock is None:
            raise RuntimeError("the local stack is not started")
        running = _running_executions()
        self._clock.advance(running, seconds)
        logger.info("clock advanced %gs for %d running executions", seconds, len(running))
        return len(running)

    def stop(self) -> None:
        """Stop taking requests, then the timers and pollers, then AWS; safe after a failed start."""
        runtime.activate(None)
        if self._gateway is not None:
            self._gateway.ready.clear()
        if self._server is not None:
            self._server.stop()
        for component in (self._scheduler, self._pollers):
            if component is not None:
                component.stop()
        if self._async_invoker is not None:
            self._async_invoker.close()
        if self._xendit is not None:
            self._xendit.close()
        if self._courier is not None:
            self._courier.close()
        self._aws.close()
        self._server = self._gateway = self._scheduler = self._pollers = self._async_invoker = self._xendit = None
        self._courier = None
        self._clock = None


def _run_function(lambda_runtime: LambdaRuntime) -> moto_patches.RunFunction:
    def run(function_name: str, event: Any) -> tuple[str, bool]:
        if isinstance(event, str | bytes):  # moto passes an empty payload as the string "{}"
            event = json.loads(event or "{}")
        invocation = lambda_runtime.invoke(function_name, event)
        return invocation.to_json(), invocation.errored

    return run


def _forget_cached_clients() -> None:
    """boto3 clients and settings cached by an earlier stack (or import) in this process are stale now."""
    from patungan.adapters.aws import reset_clients
    from patungan.adapters.tokens import token_verifier
    from patungan.core.config import get_settings

    reset_clients()
    get_settings.cache_clear()
    token_verifier.cache_clear()


def _adopt_function_environment() -> None:
    """What our code reads from a function's environment at its cold start, read again for the function
    about to run: the settings and the services composed from them (a state machine ARN only the starter
    has), the secrets its role may read,
    and the service name its logs and metrics carry (Powertools 3.37 keeps it on the process-wide Logger; without this every function
    logged the service of whichever was imported first)."""
    from patungan import composition
    from patungan.core.config import get_settings
    from patungan.core.observability import logger, metrics

    get_settings.cache_clear()
    composition.reset()  # services composed from another function's settings (GetCheckout's empty saga ARN)
    if "AWS_LAMBDA_FUNCTION_NAME" in os.environ:  # not between invocations
        permissions.forget_secrets_of_other_functions(os.environ["AWS_LAMBDA_FUNCTION_NAME"])
    service = os.environ.get("POWERTOOLS_SERVICE_NAME", "service_undefined")
    logger.service = service
    logger._default_log_keys["service"] = service  # read by inject_lambda_context(clear_state=True)
    logger.append_keys(service=service)
    metrics.service = service


def _user_pool_groups(template: Template) -> list[str]:
    groups = template.of_type("AWS::Cognito::UserPoolGroup").values()
    return [str(template.resolve(group["Properties"]["GroupName"])) for group in groups]


def _local_xendit(callback_token: str, base_url: str, time_scale: float) -> LocalXendit | None:
    try:
        from emulator.xendit import LocalXendit
    except ImportError as exc:
        logger.warning("local Xendit not mounted (%s): /_xendit answers 404", exc)
        return None
    return LocalXendit(callback_token, base_url, time_scale=time_scale)


def _running_executions() -> list[str]:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    pages = sfn.get_paginator("list_executions")
    return [
        execution["executionArn"]
        for machine in sfn.list_state_machines()["stateMachines"]
        for page in pages.paginate(stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING")
        for execution in page["executions"]
    ]


def _stop_running_executions() -> None:
    """Running executions wait in threads of their own; stop them before moto goes away under them."""
    sfn = boto3.client("stepfunctions", region_name=REGION)
    for execution_arn in _running_executions():
        sfn.stop_execution(executionArn=execution_arn)
