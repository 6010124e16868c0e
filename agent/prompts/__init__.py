"""Prompts: versioned templates and their cache."""
