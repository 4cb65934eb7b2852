-- Conversation memory, the retrieval cache and the generation cache.
--
-- Every table has expires_at NOT NULL DEFAULT 'infinity', so "live" is always the single
-- predicate expires_at > now(), used by every read; the sweeper deletes what has expired.
-- The pgvector parts are conditional: they are applied only when the extension is installed and
-- the database does not opt out (ALTER DATABASE ... SET scribe.memory_vector = 'off').
-- memory_sessions.session_id is the engine session id; it is not a foreign key to the registry so
-- memory can be written for sessions another process (or no registry) owns.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE memory_sessions (
    session_id  text PRIMARY KEY,
    title       text NOT NULL DEFAULT '',
    metadata    jsonb NOT NULL DEFAULT '{}'::jsonb,
    next_seq    bigint NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (session_id <> '')
);

CREATE TABLE memory_messages (
    id            bigserial PRIMARY KEY,
    session_id    text NOT NULL REFERENCES memory_sessions (session_id) ON DELETE CASCADE,
    seq           bigint NOT NULL,
    role          text NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
    content       text NOT NULL CHECK (content <> ''),
    content_hash  text NOT NULL,
    metadata      jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL DEFAULT 'infinity',
    tsv           tsvector GENERATED ALWAYS AS (to_tsvector('english', content)) STORED,
    UNIQUE (session_id, seq)
);
CREATE INDEX memory_messages_tsv ON memory_messages USING gin (tsv);
CREATE INDEX memory_messages_trgm ON memory_messages USING gin (content gin_trgm_ops);
CREATE INDEX memory_messages_hash ON memory_messages (session_id, content_hash);
CREATE INDEX memory_messages_expiry ON memory_messages (expires_at) WHERE expires_at <> 'infinity';

CREATE TABLE memory_context_facts (
    session_id  text NOT NULL REFERENCES memory_sessions (session_id) ON DELETE CASCADE,
    fact_type   text NOT NULL CHECK (fact_type <> ''),
    key         text NOT NULL CHECK (key <> ''),
    value       jsonb NOT NULL,
    pinned      boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL DEFAULT 'infinity',
    PRIMARY KEY (session_id, fact_type, key)
);
CREATE INDEX memory_context_facts_expiry ON memory_context_facts (expires_at)
    WHERE expires_at <> 'infinity';

CREATE TABLE memory_decisions (
    id             bigserial PRIMARY KEY,
    session_id     text REFERENCES memory_sessions (session_id) ON DELETE SET NULL,
    title          text NOT NULL CHECK (title <> ''),
    body           text NOT NULL DEFAULT '',
    status         text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed', 'superseded')),
    superseded_by  bigint REFERENCES memory_decisions (id) ON DELETE SET NULL,
    entities       text[] NOT NULL DEFAULT '{}',
    files          text[] NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL DEFAULT 'infinity',
    search_text    text GENERATED ALWAYS AS (title || ' ' || body) STORED,
    tsv            tsvector GENERATED ALWAYS AS (
                       setweight(to_tsvector('english', title), 'A')
                       || setweight(to_tsvector('english', body), 'B')) STORED,
    CHECK (superseded_by IS NULL OR status = 'superseded'),
    CHECK (superseded_by IS NULL OR superseded_by <> id)
);
CREATE INDEX memory_decisions_tsv ON memory_decisions USING gin (tsv);
CREATE INDEX memory_decisions_trgm ON memory_decisions USING gin (search_text gin_trgm_ops);
CREATE INDEX memory_decisions_session ON memory_decisions (session_id, status);
CREATE INDEX memory_decisions_superseded_by ON memory_decisions (superseded_by);
CREATE INDEX memory_decisions_expiry ON memory_decisions (expires_at) WHERE expires_at <> 'infinity';

CREATE TABLE memory_preferences (
    user_id       text NOT NULL CHECK (user_id <> ''),
    key           text NOT NULL CHECK (key <> ''),
    value         jsonb NOT NULL,
    confidence    double precision NOT NULL CHECK (confidence >= 0 AND confidence <= 1),
    source        text NOT NULL,
    usage_count   bigint NOT NULL DEFAULT 0,
    last_used_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL DEFAULT 'infinity',
    PRIMARY KEY (user_id, key)
);

CREATE TABLE memory_retrieval_cache (
    cache_key   text PRIMARY KEY,
    value       jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX memory_retrieval_cache_expiry ON memory_retrieval_cache (expires_at);

CREATE TABLE memory_generation_cache (
    cache_key      text PRIMARY KEY,
    model          text NOT NULL,
    settings_hash  text NOT NULL,
    settings       jsonb NOT NULL,
    prompt         text NOT NULL,
    response       text NOT NULL,
    hits           bigint NOT NULL DEFAULT 0,
    last_hit_at    timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL DEFAULT 'infinity'
);
CREATE INDEX memory_generation_cache_scope ON memory_generation_cache (model, settings_hash);
CREATE INDEX memory_generation_cache_trgm ON memory_generation_cache USING gin (prompt gin_trgm_ops);
CREATE INDEX memory_generation_cache_created ON memory_generation_cache (created_at);
CREATE INDEX memory_generation_cache_expiry ON memory_generation_cache (expires_at)
    WHERE expires_at <> 'infinity';

-- Vector similarity, only where pgvector is installed (0001_extensions creates it when the server
-- offers it) and the database does not opt out. Embeddings of any dimension are stored with the
-- model that made them; searches compare only vectors of the same model and dimension.
DO $$
BEGIN
    IF coalesce(current_setting('scribe.memory_vector', true), 'on') <> 'off'
       AND EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector') THEN
        EXECUTE 'ALTER TABLE memory_messages ADD COLUMN embedding vector, '
                'ADD COLUMN embedding_model text';
        EXECUTE 'ALTER TABLE memory_decisions ADD COLUMN embedding vector, '
                'ADD COLUMN embedding_model text';
    END IF;
END
$$;
