"""WebSocket fan-out of agent events."""
