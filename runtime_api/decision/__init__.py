"""The decision cycle: market context, data readiness, LLM or rule decision, simulated fill.

Plain Python (no Starlette): the runtime and the CLI both call `run_decision`; `agent_runtime`
schedules the cycles of every running agent and `round_log` writes one line per round.
"""

from runtime_api.decision.context import build_cycle_context, context_for_api
from runtime_api.decision.cycle import run_decision
from runtime_api.decision.features import build_symbol_context
from runtime_api.decision.llm import LlmBreaker, LlmDecider, LlmDecision, LlmError
from runtime_api.decision.simulator import DecisionOutcome, create_decision

__all__ = [
    "DecisionOutcome",
    "LlmBreaker",
    "LlmDecider",
    "LlmDecision",
    "LlmError",
    "build_cycle_context",
    "build_symbol_context",
    "context_for_api",
    "create_decision",
    "run_decision",
]
