"""Tools from MCP servers: configuration and policy, sessions, argument checks, results.

`Toolbox` (toolbox.py) is the one object a process keeps; `config.py` reads the servers and
their policies from the settings; `connection.py` owns each server's MCP session;
`arguments.py` checks a model's arguments against a tool's schema; `results.py` turns an MCP
result into text and cuts it for a model's context.
"""
