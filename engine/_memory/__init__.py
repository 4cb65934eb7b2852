"""Memory: the rehydrator, its sources, fusion and bundles, and the generation cache."""
