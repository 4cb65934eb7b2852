"""The live feed's decisions: topics, history, and what each subscriber gets (the server is an adapter)."""
