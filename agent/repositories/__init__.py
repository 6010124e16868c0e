"""Data access: one repository per aggregate, one module per repository; they never commit.

Import each repository from its defining module (`agent.repositories.tasks`, ...).
"""
