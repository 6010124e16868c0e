from __future__ import annotations

import json

from mcp.types import (
    CallToolResult,
    EmbeddedResource,
    ImageContent,
    TextContent,
    TextResourceContents,
)

from agent.tools.results import cut_for_model, to_output


def test_text_parts_are_joined_and_other_parts_named() -> None:
    # Arrange
    result = CallToolResult(
        content=[
            TextContent(text="first"),
            ImageContent(data="aGVsbG8=", mime_type="image/png"),
            EmbeddedResource(resource=TextResourceContents(uri="file:///a.txt", text="inside")),
        ]
    )

    # Act
    output = to_output(result)

    # Assert
    assert output.content == "first\n[image image/png, 8 base64 characters]\ninside"
    assert output.is_error is False
    assert output.structured_content is None


def test_structured_content_is_kept_as_json_and_stands_in_for_empty_text() -> None:
    result = CallToolResult(content=[], structured_content={"b": 1, "a": [2]}, is_error=True)

    output = to_output(result)

    assert json.loads(output.structured_content or "") == {"a": [2], "b": 1}
    assert output.content == output.structured_content
    assert output.is_error is True
    assert output.to_result("call_1").model_dump() == {
        "call_id": "call_1",
        "content": output.content,
        "is_error": True,
    }


def test_text_that_fits_is_not_cut() -> None:
    assert cut_for_model("abc", 3) == "abc"


def test_a_cut_keeps_the_head_and_says_how_much_was_shown() -> None:
    # Arrange
    text = "x" * 5000

    # Act
    cut = cut_for_model(text, 1000)

    # Assert
    assert len(cut) <= 1000
    shown = cut.index("\n")
    assert cut[:shown] == "x" * shown
    assert cut.endswith(f"[... cut: {shown} of 5000 characters shown]")
