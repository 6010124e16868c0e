"""Errors that stop a process from starting against Temporal; each message names a setting."""

from __future__ import annotations


class TemporalStartupError(RuntimeError):
    """Temporal is unusable for this process; the message tells a person what to fix."""


class TemporalSettingError(TemporalStartupError, ValueError):
    """A Temporal connection setting is unusable (missing file, bad PEM, key/cert mismatch)."""


class TemporalConnectError(TemporalStartupError):
    """The Temporal frontend could not be reached or refused this client."""


class SearchAttributesMissingError(TemporalStartupError):
    """The namespace lacks some of the task workflow's search attributes, or types them wrong.

    Starting or updating a task would fail, so the API and the worker refuse to start.
    """

    def __init__(self, namespace: str, problems: dict[str, str]) -> None:
        """Describe what is missing.

        Args:
            namespace: The namespace that was checked.
            problems: Attribute name -> what is wrong with it, e.g. `missing (Keyword)`.
        """
        self.namespace = namespace
        self.problems = dict(sorted(problems.items()))
        listed = ", ".join(f"{name} {problem}" for name, problem in self.problems.items())
        super().__init__(
            f"Temporal namespace {namespace!r} search attributes: {listed}. Register them with "
            "the temporal-init job (deploy/temporal/init.sh) or `temporal operator "
            "search-attribute create --namespace <ns> --name <name> --type <type>`"
        )
