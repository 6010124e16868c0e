from __future__ import annotations

import pytest

from agent.llm.tokens import count_message_tokens, count_tokens


@pytest.mark.parametrize(
    ("text", "expected"), [("", 0), ("a", 1), ("abcd", 1), ("abcde", 2), ("x" * 400, 100)]
)
def test_count_tokens_is_four_chars_per_token_rounded_up(text: str, expected: int) -> None:
    assert count_tokens(text) == expected


def test_count_message_tokens_sums_every_message() -> None:
    assert count_message_tokens(["abcd", "abcde", ""]) == 3
