"""The context provider: its specs and results, roles, the live cache, the runner of stale sources, and the built-in sources."""
