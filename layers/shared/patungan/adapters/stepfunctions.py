"""Starts Step Functions executions by name: a name already taken means the execution was started before."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from patungan.adapters.aws import client
from patungan.core.errors import DependencyUnavailable
from patungan.core.observability import logger


class ExecutionStarter:
    def start(self, state_machine_arn: str, name: str, input_json: str) -> bool:
        """Start ``name``; False when an execution of that name exists already, finished or with another
        input. (A repeated start of a running execution with the same input answers that execution: True.)"""
        try:
            client("stepfunctions").start_execution(stateMachineArn=state_machine_arn, name=name, input=input_json)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
                return False
            raise DependencyUnavailable("Step Functions refused the execution") from exc
        except BotoCoreError as exc:
            raise DependencyUnavailable("Step Functions could not be reached") from exc
        return True


class TaskTokens:
    """Answers a task a state machine waits on (``.waitForTaskToken``)."""

    def succeed(self, token: str, output: dict[str, Any]) -> None:
        """A token whose task already ended (timed out, answered before) is no error: the state machine moved on
        and its own steps decide from the stored state."""
        try:
            client("stepfunctions").send_task_success(taskToken=token, output=json.dumps(output))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"}:
                logger.info("task already ended", extra={"output": output})
                return
            raise DependencyUnavailable("Step Functions refused the task's answer") from exc
        except BotoCoreError as exc:
            raise DependencyUnavailable("Step Functions could not be reached") from exc
