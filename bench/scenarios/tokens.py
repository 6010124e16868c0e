"""Scenario 5: token stream, time to first token at the socket.

N concurrent tasks stream their LLM calls (simulator TTFT T ms, 50 tokens/s); one socket
per task. For every call whose `AGENT_STARTED` arrived live, the sample is: receipt of
the call's first `LLM_CHUNK` - receipt of its `AGENT_STARTED` - T. That is the time the
whole path (request, first token, chunk batch, NOTIFY, API relay, socket) adds to the
model's own TTFT. Target: p95 <= 20 ms. Also: chunk NOTIFYs per second (the database
writes chunks cause; they are never stored) and all commits per second meanwhile.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg

from bench.harness import Bench
from bench.model import Figure, ScenarioResult, at_most, percentile

TARGET = at_most(20.0)
TOKENS_PER_SECOND = 50
OUTPUT_TOKENS = 60
NS_PER_MS = 1_000_000


async def _commits(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        value = await conn.fetchval(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        )
        return int(value)
    finally:
        await conn.close()


async def run(bench: Bench) -> ScenarioResult:
    """Start N streaming tasks at once and time the first token of every call."""
    params = bench.params
    n, ttft = params.token_streams, params.token_ttft_ms
    result = ScenarioResult("tokens", f"5. Token stream ({n} concurrent streams, TTFT {ttft} ms)")
    directives = (
        f"[ttft_ms={ttft}] [tps={TOKENS_PER_SECOND}] [output_tokens={OUTPUT_TOKENS}] "
        "[milestones=1] [plan=sequential]"
    )
    text = f"bench tokens {bench.run_tag}: write a short report {directives}"
    created = await asyncio.gather(*(bench.clients.create_task(text) for _ in range(n)))
    spec = {
        "api_url": bench.stack.info.api_url,
        "api_key": bench.stack.info.api_key,
        "task_ids": [t["id"] for t in created],
        "clients_per_task": 1,
        "until_terminal": True,
    }
    dsn = bench.stack.info.database_url
    commits_before = await _commits(dsn)
    started = time.perf_counter()
    async with bench.helper("bench.ws_clients", spec, wait_ready=True) as handle:
        await asyncio.gather(*(bench.clients.wait_result(t["workflow_id"]) for t in created))
    seconds = time.perf_counter() - started
    commits = await _commits(dsn) - commits_before

    samples: list[float] = []
    chunks: set[tuple[str, int]] = set()
    by_role: dict[str, list[float]] = {}
    for socket in handle.result["sockets"]:
        live = False
        pending: dict[str, int] = {}
        for row in socket["rows"]:
            if row[0] == "u":
                live = True
            elif row[0] == "e" and row[2] == "AGENT_STARTED" and live:
                pending[row[3]] = row[4]
            elif row[0] == "c":
                chunk, agent, activity_id, recv_ns = row[1], row[2], row[3], row[4]
                chunks.add((f"{socket['task_id']}:{activity_id}", chunk))
                if chunk == 0 and agent in pending:
                    value = (recv_ns - pending.pop(agent)) / NS_PER_MS - ttft
                    samples.append(value)
                    by_role.setdefault(agent, []).append(value)
    p95 = round(percentile(samples, 95), 2) if samples else None
    result.figures.append(
        Figure(
            "TTFT at socket - simulator TTFT: p95",
            p95,
            "ms",
            TARGET,
            note=f"p50 {percentile(samples, 50):.1f} ms over {len(samples)} calls"
            if samples
            else "no samples",
        )
    )
    result.figures.append(
        Figure(
            "chunk NOTIFYs/s (database writes caused by chunks)",
            round(len(chunks) / seconds, 1),
            "/s",
            note=f"all commits meanwhile {commits / seconds:.0f}/s",
        )
    )
    result.distributions["TTFT overhead at socket"] = samples
    result.raw.update(
        {
            "streams": n,
            "ttft_ms": ttft,
            "tps": TOKENS_PER_SECOND,
            "output_tokens": OUTPUT_TOKENS,
            "samples": len(samples),
            "p50": round(percentile(samples, 50), 2) if samples else None,
            "p95": p95,
            "p99": round(percentile(samples, 99), 2) if samples else None,
            "by_role_p95": {
                role: round(percentile(v, 95), 2) for role, v in sorted(by_role.items())
            },
            "seconds": round(seconds, 2),
            "chunk_notifications": len(chunks),
            "commits": commits,
            "commits_per_second": round(commits / seconds, 1),
        }
    )
    return result
