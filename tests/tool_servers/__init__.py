"""MCP servers the tests build, run as subprocesses (reused by the chaos scenarios)."""
