-- Verified AI usage: what the coding agents report about themselves over
-- OTLP. One row per person, agent, model, day (in `timezone`) and kind
-- (input, output, cache_read, cache_creation, cost_micro_usd, sessions,
-- commits, active_seconds), summed as data points arrive.
CREATE TABLE usage (
    person  TEXT   NOT NULL,
    agent   TEXT   NOT NULL,
    model   TEXT   NOT NULL,
    day     TEXT   NOT NULL,   -- 2026-12-01
    kind    TEXT   NOT NULL,
    amount  INTEGER NOT NULL,
    PRIMARY KEY (person, agent, model, day, kind)
);
CREATE INDEX usage_day ON usage (day);

-- Each series' last point (cumulative series become deltas) and the windows
-- already counted (a re-sent batch counts once). A series is its resource,
-- scope, metric and attributes, hashed.
CREATE TABLE usage_series (
    series     TEXT   PRIMARY KEY,
    start_time INTEGER NOT NULL,   -- epoch nanoseconds of the series' start
    last_time  INTEGER NOT NULL,
    last_value INTEGER NOT NULL    -- scaled: micro-units for doubles
);
CREATE TABLE usage_windows (
    series     TEXT   NOT NULL,
    start_time INTEGER NOT NULL,
    end_time   INTEGER NOT NULL,
    PRIMARY KEY (series, start_time, end_time)
);
