-- Optional extensions: pg_trgm (trigram similarity) and vector (pgvector embeddings).
-- Each is created when the server ships it and this role may create it; otherwise a NOTICE says why and
-- the features built on it degrade. Code checks pg_extension at run time rather than assuming either.
DO $$
DECLARE
    ext text;
BEGIN
    FOREACH ext IN ARRAY ARRAY['pg_trgm', 'vector'] LOOP
        IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = ext) THEN
            CONTINUE;
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = ext) THEN
            RAISE NOTICE 'extension % is not available on this server; features using it are disabled', ext;
            CONTINUE;
        END IF;
        BEGIN
            EXECUTE format('CREATE EXTENSION IF NOT EXISTS %I', ext);
        EXCEPTION WHEN insufficient_privilege OR feature_not_supported OR undefined_file THEN
            RAISE NOTICE 'extension % could not be created (%); features using it are disabled', ext, SQLERRM;
        END;
    END LOOP;
END
$$;
