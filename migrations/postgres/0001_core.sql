-- Service core: the webhook inbox, repositories, people and their identities.
-- Times are epoch milliseconds (BIGINT).

CREATE TABLE repositories (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    full_name       TEXT    NOT NULL UNIQUE,   -- owner/name as GitHub spells it
    github_id       BIGINT,
    default_branch  TEXT,
    clone_url       TEXT,
    installation_id BIGINT,                   -- GitHub App installation, when there is one
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

-- Every accepted webhook delivery, stored before it is acknowledged.
CREATE TABLE deliveries (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id     TEXT    NOT NULL UNIQUE,   -- X-GitHub-Delivery
    event           TEXT    NOT NULL,          -- X-GitHub-Event
    action          TEXT,
    hook_id         TEXT,                      -- X-GitHub-Hook-ID
    payload         TEXT    NOT NULL,
    received_at     BIGINT NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'pending', -- pending|processing|processed|ignored|failed
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    last_error      TEXT,
    processed_by    TEXT,
    processed_at    BIGINT
);
CREATE INDEX deliveries_ready ON deliveries (state, next_attempt_at);

CREATE TABLE people (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    display_name TEXT    NOT NULL,
    github_login TEXT    UNIQUE,
    discord_id   TEXT,
    created_at   BIGINT NOT NULL
);

-- How a person shows up in commits and events: an email, a GitHub login, …
CREATE TABLE identities (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id  BIGINT NOT NULL REFERENCES people (id),
    kind       TEXT    NOT NULL,               -- email|github
    value      TEXT    NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (kind, value)
);
