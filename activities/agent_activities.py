"""`AgentActivities`: every LLM-calling activity of a task, with its dependencies injected.

The activities live by concern (`planning`, `milestones`, `verification`, `summaries`) on
the shared machinery of `llm_calls`; this class puts them together for the worker.
"""

from __future__ import annotations

from activities.calls import MAX_OUTPUT_TOKENS, InvalidAgentAnswerError
from activities.milestones import MilestoneActivities
from activities.planning import PlanningActivities
from activities.summaries import SUMMARY_INPUT_SHARE, SummaryActivities
from activities.tool_turns import ToolTurnActivities
from activities.verification import VerificationActivities

__all__ = [
    "MAX_OUTPUT_TOKENS",
    "SUMMARY_INPUT_SHARE",
    "AgentActivities",
    "InvalidAgentAnswerError",
]


class AgentActivities(
    PlanningActivities,
    MilestoneActivities,
    ToolTurnActivities,
    VerificationActivities,
    SummaryActivities,
):
    """classify, plan, execute, execute_turn, verify, compress, summarise (see each module).

    Construct with `AgentActivities(session_manager, llm_client, settings, prompt_cache)`.
    """
