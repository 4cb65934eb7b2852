"""Memory: the rehydrator, its sources, fusion, near-duplicates, packing and bundles, and the generation cache and its similarity guard."""
