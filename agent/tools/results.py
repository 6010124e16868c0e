"""What a tool call returned, as text: joined MCP content parts, and a cut for the model."""

from __future__ import annotations

import json

from mcp.types import (
    AudioContent,
    CallToolResult,
    ContentBlock,
    EmbeddedResource,
    ImageContent,
    ResourceLink,
    TextContent,
    TextResourceContents,
)
from pydantic import BaseModel

from agent.contract.tools import ToolResult

CUT_MARKER = "\n[... cut: {shown} of {total} characters shown]"


class ToolOutput(BaseModel):
    """One call's result as stored whole (the model may see it cut).

    Attributes:
        content: The text parts joined; non-text parts named by a placeholder. When the
            server sent only structured content, its JSON.
        is_error: The tool reported an error (the model sees it as such).
        structured_content: The server's `structuredContent` as JSON text, if it sent any.
    """

    content: str
    is_error: bool = False
    structured_content: str | None = None

    def to_result(self, call_id: str) -> ToolResult:
        """The contract's `ToolResult` answering the model's call `call_id`."""
        return ToolResult(call_id=call_id, content=self.content, is_error=self.is_error)


def to_output(result: CallToolResult) -> ToolOutput:
    """Turn an MCP `CallToolResult` into a `ToolOutput`."""
    structured = (
        None
        if result.structured_content is None
        else json.dumps(result.structured_content, ensure_ascii=False, sort_keys=True)
    )
    content = "\n".join(content_text(block) for block in result.content)
    if not content and structured is not None:
        content = structured
    return ToolOutput(content=content, is_error=result.is_error, structured_content=structured)


def content_text(block: ContentBlock) -> str:
    """One MCP content part as text; binary parts become a placeholder naming them."""
    if isinstance(block, TextContent):
        return block.text
    if isinstance(block, ImageContent | AudioContent):
        kind = "image" if isinstance(block, ImageContent) else "audio"
        return f"[{kind} {block.mime_type}, {len(block.data)} base64 characters]"
    if isinstance(block, ResourceLink):
        return f"[resource {block.uri}: {block.name}]"
    if isinstance(block, EmbeddedResource):
        resource = block.resource
        if isinstance(resource, TextResourceContents):
            return resource.text
        return f"[resource {resource.uri}: {resource.mime_type or 'binary'}]"
    return f"[{type(block).__name__}]"


def cut_for_model(text: str, limit_chars: int) -> str:
    """Cut `text` to at most `limit_chars` characters, ending in a marker saying so.

    Args:
        text: The whole result.
        limit_chars: The most characters the model may see, marker included.

    Returns:
        `text` itself when it fits; else its head and `[... cut: N of M characters shown]`.
    """
    total = len(text)
    if total <= limit_chars:
        return text
    shown = max(0, limit_chars - len(CUT_MARKER.format(shown=limit_chars, total=total)))
    return text[:shown] + CUT_MARKER.format(shown=shown, total=total)
