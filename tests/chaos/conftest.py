"""Fixtures of the chaos suite: a cluster of real processes per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.harness import Cluster

ClusterFactory = Callable[..., Cluster]


@pytest.fixture
async def cluster_factory(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Start clusters on demand (`await make(workers=1, **cluster_options)`); stop them all."""
    started: list[Cluster] = []

    async def make(*, workers: int = 1, users: int = 2, **options: Any) -> Cluster:
        cluster = Cluster(tmp_path / f"cluster{len(started)}", **options)
        started.append(cluster)
        await cluster.start(workers=workers, users=users)
        return cluster

    yield make
    for cluster in started:
        await cluster.stop()


@pytest.fixture
async def cluster(cluster_factory: Callable[..., Any]) -> Cluster:
    """One cluster with one worker and two users."""
    made: Cluster = await cluster_factory()
    return made
