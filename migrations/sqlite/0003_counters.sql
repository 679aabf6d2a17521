-- Offline runs: when each ran (its logical time, for seasonality and ordering), its labels, and
-- the values anomaly detection judges, one JSON object per run so that a run's whole history is
-- a few hundred rows, not one row per run and value.
CREATE TABLE runs (
    dataset     TEXT   NOT NULL,
    run_id      TEXT   NOT NULL,
    run_ms      BIGINT NOT NULL,              -- the run's logical time, or when first reported
    reported_ms BIGINT NOT NULL,              -- the latest report
    labels      TEXT   NOT NULL DEFAULT '{}', -- JSON object
    counters    TEXT   NOT NULL DEFAULT '{}', -- JSON object: the run's counters
    metrics     TEXT   NOT NULL DEFAULT '{}', -- JSON object: figures of the run's profile
    PRIMARY KEY (dataset, run_id)
);
CREATE INDEX runs_by_time ON runs (dataset, run_ms);

-- Counter values. Offline: one row per run and name (a re-report replaces it). Online: the
-- increments of one window (start_ms) summed per name.
CREATE TABLE counters (
    dataset    TEXT   NOT NULL,
    stage      TEXT   NOT NULL,               -- 'offline' | 'online'
    run_id     TEXT   NOT NULL DEFAULT '',
    start_ms   BIGINT NOT NULL DEFAULT 0,
    name       TEXT   NOT NULL,
    value      REAL NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (dataset, stage, run_id, start_ms, name)
);
CREATE INDEX counters_by_name ON counters (dataset, name, stage);

-- Every counter name a dataset has, per stage: the cap on names, and how long a name has been
-- seen on one side only.
CREATE TABLE counter_names (
    dataset       TEXT   NOT NULL,
    name          TEXT   NOT NULL,
    stage         TEXT   NOT NULL,
    first_seen_ms BIGINT NOT NULL,
    last_seen_ms  BIGINT NOT NULL,
    PRIMARY KEY (dataset, name, stage)
);

-- Values of a run that broke from its history. Left out of later baselines unless acknowledged.
CREATE TABLE run_anomalies (
    dataset      TEXT   NOT NULL,
    run_id       TEXT   NOT NULL,
    name         TEXT   NOT NULL,
    value        REAL NOT NULL,
    expected     REAL NOT NULL,
    low          REAL NOT NULL,
    high         REAL NOT NULL,
    baseline     TEXT   NOT NULL,
    runs         BIGINT NOT NULL,
    found_ms     BIGINT NOT NULL,
    acknowledged BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (dataset, run_id, name)
);
