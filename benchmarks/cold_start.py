"""Cold start: each handler's import time against a bare baseline (issue 8).

A flash sale scales out to many fresh containers, so a handler's import is latency its first buyer waits for.
Each figure is the median CPU time of a few fresh interpreters (Python's own start-up excluded): the baseline imports
boto3, pydantic and Powertools and builds a Tracer and one DynamoDB client, the floor of any handler here; each
handler's interpreter imports its module as Lambda would (the layer on sys.path, the function's template
environment), nothing else.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from dataclasses import dataclass

from benchmarks.report import table
from emulator.template import REGION, FunctionSpec, Template

RUNS = 5
TARGET_RATIO = 1.2

_TIMED = """
import sys, time
started = time.process_time()
{body}
sys.stdout.write(repr(time.process_time() - started))
"""
BASELINE = """
import boto3, pydantic
from aws_lambda_powertools import Tracer
Tracer()
boto3.client("dynamodb")
"""
_HANDLER = """
import importlib.util
_spec = importlib.util.spec_from_file_location("lambda_function", {module_file!r})
_spec.loader.exec_module(importlib.util.module_from_spec(_spec))
"""


@dataclass(frozen=True)
class HandlerImport:
    logical_id: str
    handler: str
    seconds: float
    ratio: float


@dataclass(frozen=True)
class ColdStart:
    runs: int
    baseline_seconds: float
    handlers: list[HandlerImport]

    @property
    def median_ratio(self) -> float:
        return statistics.median(handler.ratio for handler in self.handlers)

    @property
    def worst(self) -> HandlerImport:
        return max(self.handlers, key=lambda handler: handler.ratio)


def _environment(template: Template, spec: FunctionSpec | None) -> dict[str, str]:
    layers = os.pathsep.join(str(path) for path in template.layer_paths())
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": layers,
        "PYTHONDONTWRITEBYTECODE": "",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        **(spec.environment if spec is not None else {}),
        **({"LAMBDA_TASK_ROOT": str(spec.code_uri), "_HANDLER": spec.handler} if spec is not None else {}),
    }


def _samples(body: str, environment: dict[str, str], runs: int) -> list[float]:
    """The CPU time ``body`` takes in each of ``runs`` fresh interpreters (CPU time: other processes on the
    machine move it less than wall time)."""
    seconds = []
    for _ in range(runs):
        completed = subprocess.run(  # noqa: S603 - our own interpreter running our own code
            [sys.executable, "-c", _TIMED.format(body=body)],
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"import failed:\n{completed.stderr}")
        seconds.append(float(completed.stdout))
    return seconds


def measure_cold_start(progress, runs: int = RUNS) -> ColdStart:
    template = Template.load()
    # The baseline is sampled before and after the handlers, so a change of load during the run weighs on both.
    baseline_samples = _samples(BASELINE, _environment(template, None), runs)
    measured = []
    for logical_id, spec in sorted(template.functions().items()):
        body = _HANDLER.format(module_file=str(spec.module_file))
        seconds = statistics.median(_samples(body, _environment(template, spec), runs))
        measured.append((logical_id, spec.handler, seconds))
        progress(f"{logical_id} {seconds * 1000:.0f} ms")
    baseline_samples += _samples(BASELINE, _environment(template, None), runs)
    baseline = statistics.median(baseline_samples)
    progress(f"baseline {baseline * 1000:.0f} ms")
    handlers = [HandlerImport(name, handler, seconds, seconds / baseline) for name, handler, seconds in measured]
    return ColdStart(runs, baseline, handlers)


def cold_start_table(cold_start: ColdStart) -> str:
    rows = [
        [handler.logical_id, handler.handler, f"{handler.seconds * 1000:.0f}", f"{handler.ratio:.2f}"]
        for handler in sorted(cold_start.handlers, key=lambda handler: handler.ratio, reverse=True)
    ]
    return table(["function", "handler", "import ms", "x baseline"], rows)
