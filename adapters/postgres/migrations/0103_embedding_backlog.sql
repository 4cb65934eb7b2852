-- The embedding backlog: rows stored without a vector (imported in bulk, embedded later in the
-- background) are found newest first through a partial index on the rows that have no
-- embedding model yet. Only where the vector columns exist (pgvector; see 0100_memory).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_schema = current_schema() AND table_name = 'memory_messages'
                 AND column_name = 'embedding_model') THEN
        EXECUTE 'CREATE INDEX memory_messages_unembedded ON memory_messages (id DESC)'
                ' WHERE embedding_model IS NULL';
        EXECUTE 'CREATE INDEX memory_messages_embedding_model ON memory_messages (embedding_model)';
    END IF;
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_schema = current_schema() AND table_name = 'memory_decisions'
                 AND column_name = 'embedding_model') THEN
        EXECUTE 'CREATE INDEX memory_decisions_unembedded ON memory_decisions (id DESC)'
                ' WHERE embedding_model IS NULL';
        EXECUTE 'CREATE INDEX memory_decisions_embedding_model ON memory_decisions (embedding_model)';
    END IF;
END
$$;
