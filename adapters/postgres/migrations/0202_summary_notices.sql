-- Summary notices for daemons that share this database (as 0201's for sessions and worklogs): a
-- NOTIFY on scribe_summaries when a summary version is stored, so a daemon can tell its watchers
-- (the MCP summary resources) that a session of another daemon has a new summary. Ids only:
--   scribe_summaries: {"s": session id, "o": owner, "v": summary version}
CREATE FUNCTION scribe_notify_summary() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('scribe_summaries', json_build_object(
        's', NEW.session_id, 'o', (SELECT s.owner FROM sessions s WHERE s.id = NEW.session_id),
        'v', NEW.version)::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER summaries_notify AFTER INSERT ON summaries
    FOR EACH ROW EXECUTE FUNCTION scribe_notify_summary();
