-- The session registry, the engine owners that hold sessions, and the tables the scribe fills later
-- (worklog entries, summaries).

-- One row per engine process. An owner holds a session-level advisory lock on `lock_key` for as long as it
-- lives; a session whose owner's lock is no longer held belongs to a dead process (orphaned).
CREATE TABLE engine_owners (
    owner_id     text PRIMARY KEY,
    lock_key     bigint NOT NULL UNIQUE,
    pid          integer NOT NULL,
    host         text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sessions (
    id            text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 200),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    backlog_id    text,
    kind          text NOT NULL,
    state         text NOT NULL,
    priority      smallint NOT NULL CHECK (priority BETWEEN 0 AND 2),
    tags          text[] NOT NULL DEFAULT '{}',
    description   text NOT NULL DEFAULT '',
    parent_id     text REFERENCES sessions (id) ON DELETE SET NULL,
    related_ids   text[] NOT NULL DEFAULT '{}',
    repo_path     text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_activity timestamptz NOT NULL DEFAULT now(),
    idle_timeout  double precision CHECK (idle_timeout IS NULL OR idle_timeout > 0),
    error         text,
    owner         text,
    version       bigint NOT NULL DEFAULT 1 CHECK (version >= 1)
);

CREATE INDEX sessions_state_activity_idx ON sessions (state, last_activity);
CREATE INDEX sessions_owner_idx ON sessions (owner) WHERE owner IS NOT NULL;
CREATE INDEX sessions_backlog_idx ON sessions (backlog_id) WHERE backlog_id IS NOT NULL;
CREATE INDEX sessions_parent_idx ON sessions (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX sessions_tags_idx ON sessions USING gin (tags);

CREATE TABLE worklog_entries (
    id         bigserial PRIMARY KEY,
    session_id text NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq        bigint NOT NULL,
    kind       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    payload    jsonb NOT NULL DEFAULT '{}',
    UNIQUE (session_id, seq)
);

CREATE INDEX worklog_entries_created_idx ON worklog_entries (session_id, created_at);

CREATE TABLE summaries (
    session_id text NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    version    integer NOT NULL CHECK (version >= 1),
    created_at timestamptz NOT NULL DEFAULT now(),
    payload    jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (session_id, version)
);
