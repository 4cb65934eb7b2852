"""The context provider: sources, role profiles and the live cache."""
