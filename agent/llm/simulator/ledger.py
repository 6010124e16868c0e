"""The tokens the simulator served, per task: what a provider would bill.

A completion's prompt counts once the model starts answering (its first content event,
or the JSON body); its output counts as it is sent. A completion whose client went away
(or that the simulator cut) before its end is counted as unfinished: its client may have
died with tokens it never recorded. Tasks are told apart by the `X-Agent-Task` header
the LLM client sends; calls without it are counted under `""`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ServedTokens:
    """What one task was served.

    Attributes:
        input_tokens: Prompt tokens of completions that started answering.
        output_tokens: Completion tokens sent.
        completions: Completions that started answering.
        unfinished: Of those, the ones that ended before their last event.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    completions: int = 0
    unfinished: int = 0


@dataclass
class ServedLedger:
    """Served tokens by task id (text of the `X-Agent-Task` header)."""

    tasks: dict[str, ServedTokens] = field(default_factory=dict)

    def _of(self, task: str | None) -> ServedTokens:
        return self.tasks.setdefault(task or "", ServedTokens())

    def started(self, task: str | None, input_tokens: int) -> None:
        """Count a completion that starts answering, with its prompt."""
        served = self._of(task)
        served.completions += 1
        served.input_tokens += input_tokens

    def sent(self, task: str | None, output_tokens: int) -> None:
        """Count output tokens sent."""
        self._of(task).output_tokens += output_tokens

    def unfinished(self, task: str | None) -> None:
        """Count a started completion that did not reach its end."""
        self._of(task).unfinished += 1

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every task's counts, as JSON."""
        return {task: asdict(served) for task, served in self.tasks.items()}
