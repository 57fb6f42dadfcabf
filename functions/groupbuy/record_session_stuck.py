"""Task RecordStuck (every session state machine): a step kept failing; show it on the session (defect 5)."""

from patungan.composition import stuck_sessions
from patungan.core.steps import step_handler

lambda_handler = step_handler(
    lambda event: stuck_sessions().record(event["session_id"], event["workflow"], event["step"], event["error"])
)
