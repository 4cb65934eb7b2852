-- Change notices for daemons that share this database: whatever writes a session or worklog entries,
-- a NOTIFY says what changed when it commits, so every daemon's feed shows every session. A notice
-- carries ids and sequence numbers only (NOTIFY payloads are limited to 8000 bytes), as JSON; the
-- listeners read the rows from the tables, and one that was disconnected catches up from them by seq.
--   scribe_sessions: {"s": session id, "o": owner} when a session is registered, changes version or
--                    is deleted.
--   scribe_worklog:  {"s": session id, "o": owner, "f": first seq, "l": last seq} for each session a
--                    statement appended entries to.
CREATE FUNCTION scribe_notify_session() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r sessions;
BEGIN
    r := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    PERFORM pg_notify('scribe_sessions', json_build_object('s', r.id, 'o', r.owner)::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER sessions_notify_insert AFTER INSERT OR DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION scribe_notify_session();
CREATE TRIGGER sessions_notify_update AFTER UPDATE ON sessions
    FOR EACH ROW WHEN (OLD.version IS DISTINCT FROM NEW.version)
    EXECUTE FUNCTION scribe_notify_session();

CREATE FUNCTION scribe_notify_worklog() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('scribe_worklog', json_build_object(
        's', a.session_id, 'o', (SELECT s.owner FROM sessions s WHERE s.id = a.session_id),
        'f', min(a.seq), 'l', max(a.seq))::text)
    FROM appended a GROUP BY a.session_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER worklog_entries_notify AFTER INSERT ON worklog_entries
    REFERENCING NEW TABLE AS appended FOR EACH STATEMENT EXECUTE FUNCTION scribe_notify_worklog();
