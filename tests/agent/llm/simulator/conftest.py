"""Clients of the simulator's wire format: the official SDK and raw HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import openai
import pytest_asyncio


@pytest_asyncio.fixture(loop_scope="session")
async def sdk(simulator_url: str) -> AsyncIterator[openai.AsyncOpenAI]:
    """The openai SDK pointed at the simulator (no retries)."""
    async with openai.AsyncOpenAI(base_url=simulator_url, api_key="any", max_retries=0) as client:
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def http(simulator_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A raw HTTP client at the simulator's `/v1`."""
    async with httpx.AsyncClient(base_url=simulator_url, timeout=10) as client:
        yield client
