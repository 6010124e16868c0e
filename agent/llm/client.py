"""The LLM client: one code path for OpenAI, any OpenAI-compatible server and the simulator.

Built on the official `openai` SDK (`AsyncOpenAI`) with `max_retries=0`: retries belong to
Temporal, so every failure surfaces at once, raw (openai SDK errors, `LLMStreamCutError`),
and the calling activity maps it with `agent.llm.errors.to_application_error`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Any, Self, cast

import openai
import structlog
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.completion_usage import CompletionUsage
from pydantic import SecretStr

from agent.config import Settings
from agent.contract.tools import ToolCall
from agent.llm.errors import LLMStreamCutError
from agent.llm.guard import Admission, ProviderGuard
from agent.llm.pricing import PriceTable
from agent.llm.tool_calls import ToolCallAssembler, message_tool_calls
from agent.llm.types import LLMRequest, LLMResponse, Usage, estimated_output_tokens
from agent.observability.llm import LLMCallObservation

logger = structlog.get_logger(__name__)

ROLE_HEADER = "X-Agent-Role"
"""Header carrying the calling agent's role (the simulator answers by it)."""

TASK_HEADER = "X-Agent-Task"
"""Header carrying the task a call is for (the simulator counts served tokens by it)."""

SIMULATOR_API_KEY = "sk-simulator"
"""Key sent when none is configured: the simulator accepts any key."""

OPENAI_BASE_URL = "https://api.openai.com/v1"


def simulator_base_url(settings: Settings) -> str:
    """Return the base URL of the simulator configured in `settings`.

    Args:
        settings: Service settings (`sim_host`, `sim_port`).

    Returns:
        `http://<sim_host>:<sim_port>/v1`.
    """
    return f"http://{settings.sim_host}:{settings.sim_port}/v1"


def _resolve_base_url(settings: Settings, base_url: str | None) -> str:
    if base_url is not None:
        return base_url
    if settings.llm_base_url is not None:
        return settings.llm_base_url
    # A key without a URL means the real OpenAI; neither means the simulator.
    if settings.llm_api_key is not None:
        return OPENAI_BASE_URL
    return simulator_base_url(settings)


def _usage_from(usage: CompletionUsage | None) -> Usage | None:
    if usage is None:
        return None
    return Usage(input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens)


def _call_size(request: LLMRequest) -> int:
    """Tokens a call may use at most (prompt plus output cap), for the tokens-per-minute limit."""
    return request.estimated_input_tokens() + (request.max_tokens or 0)


def _estimated_usage(request: LLMRequest, content: str, tool_calls: list[ToolCall]) -> Usage:
    return Usage(
        input_tokens=request.estimated_input_tokens(),
        output_tokens=estimated_output_tokens(content, tool_calls),
        estimated=True,
    )


class LLMClient:
    """Chat completions against the configured endpoint, with usage and cost on every call.

    With no base URL and no key configured it targets the simulator
    (`settings.sim_host:sim_port`, or `settings.llm_base_url` when `agent up` sets it);
    `AGENT_LLM_BASE_URL` / `AGENT_LLM_API_KEY` point it at any OpenAI-compatible server.

    Example:
        >>> async with LLMClient(settings) as client:
        ...     response = await client.complete(request)
        ...     async with client.stream(request) as stream:
        ...         async for delta in stream:
        ...             ...
        ...     final = stream.response
    """

    def __init__(
        self,
        settings: Settings,
        *,
        base_url: str | None = None,
        api_key: SecretStr | str | None = None,
        price_table: PriceTable | None = None,
        guard: ProviderGuard | None = None,
    ) -> None:
        """Create the client (no I/O happens until the first call).

        Args:
            settings: Service settings (endpoint, key, timeouts, prices, breakers, limits).
            base_url: Overrides the configured base URL (tests).
            api_key: Overrides the configured key (tests).
            price_table: Prices to use; built from `settings` when omitted.
            guard: The breakers and model limits; built from `settings` when omitted.
                One client per worker process, so its calls share one view of the provider.
        """
        key = api_key if api_key is not None else settings.llm_api_key
        if isinstance(key, str):
            key = SecretStr(key)
        self.base_url = _resolve_base_url(settings, base_url)
        self._prices = price_table if price_table is not None else PriceTable(settings)
        self.guard = guard if guard is not None else ProviderGuard(settings, self.base_url)
        self._openai = openai.AsyncOpenAI(
            api_key=(key.get_secret_value() if key is not None else SIMULATOR_API_KEY),
            base_url=self.base_url,
            max_retries=0,
            timeout=openai.Timeout(
                settings.llm_timeout_seconds, connect=settings.llm_connect_timeout_seconds
            ),
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._openai.close()

    def cost(self, request_model: str, served_model: str, usage: Usage) -> float | None:
        """Return the cost of a call, pricing the served model or else the requested one.

        Args:
            request_model: Model asked for.
            served_model: Model the provider reports (may be a dated snapshot).
            usage: Tokens used.

        Returns:
            USD, or None when neither model has a price.
        """
        if self._prices.price(served_model) is not None:
            return self._prices.cost(served_model, usage)
        return self._prices.cost(request_model, usage)

    def _params(self, request: LLMRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": request.model,
            "messages": [m.to_openai() for m in request.messages],
        }
        if request.tools:
            params["tools"] = request.openai_tools()
        if request.max_tokens is not None:
            params["max_tokens"] = request.max_tokens
        if request.temperature is not None:
            params["temperature"] = request.temperature
        if request.response_format is not None:
            params["response_format"] = request.response_format.to_openai()
        elif request.json_mode:
            params["response_format"] = {"type": "json_object"}
        headers: dict[str, str] = {}
        if request.role is not None:
            headers[ROLE_HEADER] = request.role.value
        if request.task_id is not None:
            headers[TASK_HEADER] = str(request.task_id)
        if headers:
            params["extra_headers"] = headers
        return params

    async def complete(self, request: LLMRequest, *, last_chance: bool = False) -> LLMResponse:
        """Run one non-streaming chat completion.

        Args:
            request: The request.
            last_chance: The caller gives up if this attempt fails: an open breaker lets
                it through as its probe instead of refusing it.

        Returns:
            The answer with usage and cost (`cost_usd` None for an unpriced model).

        Raises:
            openai.OpenAIError: Any provider or transport failure (map it with
                `to_application_error`).
        """
        admission = await self.guard.admit(
            request.model, _call_size(request), last_chance=last_chance
        )
        if admission.model != request.model:
            request = request.model_copy(update={"model": admission.model})
        started = time.perf_counter()
        try:
            completion: ChatCompletion = await self._openai.chat.completions.create(
                **self._params(request), stream=False
            )
        except BaseException as exc:
            admission.finished(exc)
            raise
        choice = completion.choices[0] if completion.choices else None
        content = (choice.message.content or "") if choice is not None else ""
        tool_calls = message_tool_calls(choice.message) if choice is not None else []
        usage = _usage_from(completion.usage) or _estimated_usage(request, content, tool_calls)
        admission.finished(None, usage.total_tokens)
        model = completion.model or request.model
        response = LLMResponse(
            content=content,
            usage=usage,
            cost_usd=self.cost(request.model, model, usage),
            model=model,
            finish_reason=choice.finish_reason if choice is not None else None,
            tool_calls=tool_calls,
        )
        logger.debug(
            "llm_call_completed",
            model=model,
            role=request.role,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cost_usd=response.cost_usd,
            tool_calls=len(tool_calls),
            seconds=round(time.perf_counter() - started, 3),
        )
        return response

    async def complete_many(self, requests: Sequence[LLMRequest]) -> list[LLMResponse]:
        """Run independent completions concurrently (never one after another).

        Args:
            requests: Independent requests.

        Returns:
            The responses, in the order of `requests`.
        """
        return list(await asyncio.gather(*(self.complete(r) for r in requests)))

    def stream(self, request: LLMRequest, *, last_chance: bool = False) -> LLMStream:
        """Start a streaming completion; use it as an async context manager.

        Args:
            request: The request.
            last_chance: The caller gives up if this attempt fails: an open breaker lets
                it through as its probe instead of refusing it.

        Returns:
            An `LLMStream`: `async with client.stream(req) as s: async for delta in s`,
            then `s.response`.
        """
        return LLMStream(self, request, last_chance=last_chance)

    async def _open_stream(self, request: LLMRequest) -> openai.AsyncStream[ChatCompletionChunk]:
        sdk_stream = await self._openai.chat.completions.create(
            **self._params(request), stream=True, stream_options={"include_usage": True}
        )
        return cast(openai.AsyncStream[ChatCompletionChunk], sdk_stream)


class LLMStream:
    """One streaming completion: yields text deltas, then holds the final `LLMResponse`.

    Streamed `tool_calls` deltas are not yielded: they are assembled by index and the final
    (or partial) response carries the whole calls in `tool_calls`.

    Leaving the `async with` block (normally, on error, or on `CancelledError`) closes the
    HTTP stream. A stream that ends without a `finish_reason` raises `LLMStreamCutError`
    (retryable). Usage is the provider's final usage chunk (`stream_options.include_usage`),
    or an estimate with `count_tokens` when the provider sent none.
    """

    def __init__(
        self, client: LLMClient, request: LLMRequest, *, last_chance: bool = False
    ) -> None:
        self._client = client
        self._request = request
        self._last_chance = last_chance
        self._sdk_stream: openai.AsyncStream[ChatCompletionChunk] | None = None
        self._iterator: AsyncIterator[str] | None = None
        self._parts: list[str] = []
        self._tool_calls = ToolCallAssembler()
        self._usage: Usage | None = None
        self._model: str = request.model
        self._finish_reason: str | None = None
        self._response: LLMResponse | None = None
        self._observation = LLMCallObservation(request, client.base_url)
        self._admission: Admission | None = None

    @property
    def fallback_from(self) -> str | None:
        """The model asked for, when its open breaker sent this call to a fallback model."""
        return self._admission.fallback_from if self._admission is not None else None

    async def __aenter__(self) -> Self:
        # The breaker and the model's limits first: nothing is sent to a dead route, and
        # a call waits here for capacity (`CircuitOpenError` when the route is open).
        admission = await self._client.guard.admit(
            self._request.model, _call_size(self._request), last_chance=self._last_chance
        )
        self._admission = admission
        if admission.model != self._request.model:
            self._request = self._request.model_copy(update={"model": admission.model})
            self._model = admission.model
            self._observation = LLMCallObservation(self._request, self._client.base_url)
        try:
            with self._observation.opening():
                self._sdk_stream = await self._client._open_stream(self._request)
        except BaseException as exc:
            admission.finished(exc)
            raise
        admission.observe_headers(self._sdk_stream.response.headers)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        partial = self.partial_response()
        self._observation.close(partial, exc)
        if self._admission is not None:
            self._admission.finished(exc, partial.usage.total_tokens)
        await self.aclose()

    async def aclose(self) -> None:
        """Stop reading and close the HTTP stream (idempotent)."""
        iterator, self._iterator = self._iterator, None
        if iterator is not None and hasattr(iterator, "aclose"):
            await iterator.aclose()
        sdk_stream, self._sdk_stream = self._sdk_stream, None
        if sdk_stream is not None:
            await sdk_stream.close()

    def __aiter__(self) -> AsyncIterator[str]:
        if self._iterator is None:
            self._iterator = self._deltas()
        return self._iterator

    async def _deltas(self) -> AsyncIterator[str]:
        if self._sdk_stream is None:
            raise RuntimeError("use `async with client.stream(request) as stream` first")
        async for chunk in self._sdk_stream:
            if chunk.model:
                self._model = chunk.model
            if chunk.usage is not None:
                self._usage = _usage_from(chunk.usage)
            for choice in chunk.choices:
                if choice.index != 0:
                    continue
                if choice.finish_reason is not None:
                    self._finish_reason = choice.finish_reason
                for call_delta in choice.delta.tool_calls or []:
                    self._observation.delta()
                    self._tool_calls.add(call_delta)
                if choice.delta.content:
                    self._observation.delta()
                    self._parts.append(choice.delta.content)
                    yield choice.delta.content
        if self._finish_reason is None:
            raise LLMStreamCutError(len(self.text))
        self._response = self._build(self._finish_reason)
        logger.debug(
            "llm_stream_completed",
            model=self._response.model,
            role=self._request.role,
            input_tokens=self._response.usage.input_tokens,
            output_tokens=self._response.usage.output_tokens,
            cost_usd=self._response.cost_usd,
            tool_calls=len(self._response.tool_calls),
        )

    @property
    def text(self) -> str:
        """The text received so far."""
        return "".join(self._parts)

    def _build(self, finish_reason: str | None) -> LLMResponse:
        text = self.text
        tool_calls = self._tool_calls.calls()
        usage = self._usage or _estimated_usage(self._request, text, tool_calls)
        return LLMResponse(
            content=text,
            usage=usage,
            cost_usd=self._client.cost(self._request.model, self._model, usage),
            model=self._model,
            finish_reason=finish_reason,
            tool_calls=tool_calls,
        )

    @property
    def response(self) -> LLMResponse:
        """The complete answer, available once the stream has been read to its end.

        Raises:
            RuntimeError: When the stream has not finished.
        """
        if self._response is None:
            raise RuntimeError("the stream has not finished; use partial_response()")
        return self._response

    def partial_response(self) -> LLMResponse:
        """What was received so far, with usage (estimated when the provider sent none).

        Use it after a cancel or an early exit to account for the tokens already spent.

        Returns:
            The final response when the stream finished, else the partial one
            (`finish_reason` None).
        """
        if self._response is not None:
            return self._response
        return self._build(None)

    async def read_all(self) -> LLMResponse:
        """Consume the rest of the stream and return the final response.

        Returns:
            The complete answer.
        """
        async for _ in self:
            pass
        return self.response
