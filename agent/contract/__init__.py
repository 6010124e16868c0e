"""The contract every layer shares: defined once here, served to clients, never copied.

- `task`: the task workflow's input, result, resume update, pause state and progress query.
- `plan`: plan validation, plan edits and DAG readiness (pure functions).
- `breakpoints`: which resume actions fit which breakpoint kind.
- `errors`: the API's error codes and the workflow's `ApplicationError` types.
- `protocol`: the event sockets' message kinds and close codes.
- `tools`: tool specs as pinned per task, a model's tool call and its result.
- `retention`: the scheduled event retention: its workflow input and what a run pruned.

The event envelope and the status enums live in `agent.events.types` (the path the coding
guide gives them); everything here imports them from there. See docs/architecture.md.
"""
