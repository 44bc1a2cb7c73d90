-- DMs telling people what happened to their tokens: one row per person per
-- settle pass (the entries after the cursor), sent once across replicas.
CREATE TABLE discord_dms (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person           TEXT    NOT NULL,
    discord_id       TEXT    NOT NULL,
    after_entry_id   BIGINT NOT NULL,   -- the entries it covers: (after, through]
    through_entry_id BIGINT NOT NULL,
    body             TEXT    NOT NULL,
    state            TEXT    NOT NULL DEFAULT 'pending',   -- pending | sent | failed
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    lease_owner      TEXT,
    lease_until      BIGINT,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    sent_at          BIGINT,
    UNIQUE (person, after_entry_id)
);
CREATE INDEX discord_dms_due ON discord_dms (state, next_attempt_at);

-- How far DMs have been planned: the last ledger entry looked at. Only a
-- replica that moves it from the value it read plans those entries.
CREATE TABLE discord_dm_cursor (
    id               BIGINT PRIMARY KEY CHECK (id = 1),
    through_entry_id BIGINT NOT NULL
);
