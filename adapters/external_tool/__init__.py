"""External tools as memory sources: a command run once per search, the query as JSON on its stdin,
evidence back as JSON lines."""
