-- The repository a memory session's memory belongs to (the work tree's root path), so memory
-- written in one session of a repository is found from every other session on it.
-- Memory sessions of registered sessions that watch a work tree get that work tree's path.

ALTER TABLE memory_sessions ADD COLUMN repo text CHECK (repo IS NULL OR repo <> '');
CREATE INDEX memory_sessions_repo ON memory_sessions (repo) WHERE repo IS NOT NULL;

UPDATE memory_sessions m SET repo = s.repo_path
    FROM sessions s WHERE s.id = m.session_id AND s.repo_path IS NOT NULL AND s.repo_path <> '';
