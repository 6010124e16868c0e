"""An OpenAI-compatible LLM simulator: deterministic agents, controllable latency and faults."""
