-- Indexes for memory at a million messages.
--
-- "Live" (expires_at > now()) cannot be an index predicate (now() is not immutable), so the
-- partial indexes here are on what is fixed per row: decisions that are not superseded (what a
-- search reads unless asked for superseded ones) and superseded ones (what the retention sweep
-- deletes). The vector indexes (HNSW, one per embedding model and dimension) are not here: the
-- model is configured at run time, so the store creates the index for its embedder's model when
-- it opens (adapters/postgres/_memory_vector_index.py).

-- Searches of decisions leave superseded ones out: full text and trigram over the rest.
CREATE INDEX memory_decisions_live_tsv ON memory_decisions USING gin (tsv)
    WHERE status <> 'superseded';
CREATE INDEX memory_decisions_live_trgm ON memory_decisions USING gin (search_text gin_trgm_ops)
    WHERE status <> 'superseded';

-- The retention sweep: superseded decisions by the time they were superseded (updated_at), and
-- messages by age (rows are appended in time order, so a BRIN index is a few pages per million).
CREATE INDEX memory_decisions_superseded_at ON memory_decisions (updated_at)
    WHERE status = 'superseded';
CREATE INDEX memory_messages_created_brin ON memory_messages USING brin (created_at);
