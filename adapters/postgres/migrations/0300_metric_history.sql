-- The metric history: one row per minute and daemon, each series' mean and peak over the minute
-- in one JSON object ({"gate.db.borrowed": [mean, peak], ...}). The daemon sweeps rows past their
-- retention (30 days by default) and the oldest past a row cap, so the table stays bounded.
CREATE TABLE metric_minutes (
    daemon text NOT NULL DEFAULT '',
    minute timestamptz NOT NULL,
    samples integer NOT NULL CHECK (samples >= 0),
    series jsonb NOT NULL,
    PRIMARY KEY (daemon, minute)
);
CREATE INDEX metric_minutes_minute ON metric_minutes (minute);
