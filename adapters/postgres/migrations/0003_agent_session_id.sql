-- The id a coding agent uses for its own conversation (a Claude Code session id, say), given when the
-- session starts: agents find their session by it. Several sessions may share one (an agent's
-- conversation that outlived a session), so it is indexed, not unique. Sessions are also listed by the
-- work tree they watch.
ALTER TABLE sessions
    ADD COLUMN agent_session_id text
    CHECK (agent_session_id IS NULL OR length(agent_session_id) BETWEEN 1 AND 200);

CREATE INDEX sessions_agent_session_idx ON sessions (agent_session_id)
    WHERE agent_session_id IS NOT NULL;
CREATE INDEX sessions_repo_path_idx ON sessions (repo_path) WHERE repo_path IS NOT NULL;
