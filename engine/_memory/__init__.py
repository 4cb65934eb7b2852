"""Memory: the rehydrator, its sources, fusion, near-duplicates, packing and bundles, and the generation cache with its records and similarity guard."""
