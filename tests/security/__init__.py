"""Hostile archives and fuzzing: nothing executes, every failure is typed."""
