-- Optional: pg_prewarm (PostgreSQL's contrib), with which the daemon loads its model's HNSW indexes
-- into the buffer cache when it starts (adapters/postgres/_memory_vector_index.py). Without it (not
-- shipped, or not allowed) the indexes are cached as searches read them.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_prewarm')
       AND EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_prewarm') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS pg_prewarm;
        EXCEPTION WHEN insufficient_privilege OR feature_not_supported OR undefined_file THEN
            RAISE NOTICE 'extension pg_prewarm could not be created (%); indexes are not prewarmed', SQLERRM;
        END;
    END IF;
END
$$;
