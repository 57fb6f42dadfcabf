"""The Lambda entry point of a Step Functions task, scheduled job or event consumer: logging context,
tracing and metrics around one use-case call. An exception's class name is the error type the state
machine's Retry and Catch match on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from patungan.core.observability import logger, metrics, tracer

Step = Callable[[dict[str, Any]], Any]


def step_handler(step: Step) -> Callable[[dict[str, Any], LambdaContext], Any]:
    @logger.inject_lambda_context(clear_state=True)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
        return step(event)

    return lambda_handler
