-- Several daemons on one database: each owner row is a daemon's identity (host, pid, a name) and its
-- lease. An owner renews `lease_until` with every heartbeat; once it has passed, the owner counts as
-- gone and its live sessions are orphaned by whichever daemon sweeps first. A daemon that finds its own
-- lease expired takes a new `generation` (from one sequence, so generations never repeat), and every
-- write to a session checks the writer's generation against the one the session was owned under
-- (`sessions.owner_generation`): a daemon cut off past its lease writes nothing to its old sessions.
CREATE SEQUENCE owner_generations;

ALTER TABLE engine_owners
    ADD COLUMN name text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    ADD COLUMN generation bigint NOT NULL DEFAULT nextval('owner_generations'),
    ADD COLUMN lease_until timestamptz NOT NULL DEFAULT now();

ALTER TABLE sessions ADD COLUMN owner_generation bigint;

-- Every daemon lists every session, a page at a time in this order.
CREATE INDEX sessions_listing_idx ON sessions (created_at, id);
