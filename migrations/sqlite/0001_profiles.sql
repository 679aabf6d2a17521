-- Profiles: online windows and their rollups, offline runs (one row per uploaded part).
CREATE TABLE profiles (
    dataset    TEXT    NOT NULL,
    stage      TEXT    NOT NULL,           -- 'offline' | 'online'
    kind       TEXT    NOT NULL,           -- 'window' | 'rollup' | 'run'
    run_id     TEXT    NOT NULL DEFAULT '',
    part       TEXT    NOT NULL DEFAULT '',
    start_ms   BIGINT  NOT NULL,           -- window start (0 for runs)
    end_ms     BIGINT  NOT NULL,           -- window end; for runs, the last update
    rows       BIGINT  NOT NULL,
    body       BLOB    NOT NULL,           -- the profile file
    updated_ms BIGINT  NOT NULL,
    PRIMARY KEY (dataset, stage, kind, run_id, part, start_ms)
);
CREATE INDEX profiles_by_end ON profiles (dataset, kind, end_ms);

-- A pinned reference: the offline run that current data is compared with.
CREATE TABLE reference_pins (
    dataset   TEXT   NOT NULL PRIMARY KEY,
    run_id    TEXT   NOT NULL,
    pinned_ms BIGINT NOT NULL
);

-- The latest drift verdict per dataset, in `driftd compare --json`'s shape.
CREATE TABLE verdicts (
    dataset      TEXT   NOT NULL PRIMARY KEY,
    evaluated_ms BIGINT NOT NULL,
    report       TEXT   NOT NULL
);
