-- What a message was imported from (a transcript record's uid): a session keeps one message per
-- source id, so importing a transcript again stores nothing twice. NULL: a message typed or sent
-- without one (any number of those).
ALTER TABLE memory_messages
    ADD COLUMN source_id text
    CHECK (source_id IS NULL OR length(source_id) BETWEEN 1 AND 1024);

CREATE UNIQUE INDEX memory_messages_source ON memory_messages (session_id, source_id)
    WHERE source_id IS NOT NULL;
