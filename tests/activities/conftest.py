"""Activity tests reuse the workflow tests' simulator fixture."""

from tests.workflows.conftest import engine_simulator

__all__ = ["engine_simulator"]
