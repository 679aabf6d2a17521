-- Open windows (and their rollups, and offline runs' record parts) are stored per writer: each
-- `driftd serve` process writes its own partial, and reads merge them. Rows stored before
-- belong to the writer '' and stay. SQLite cannot change a primary key: the table is rebuilt.
CREATE TABLE profiles_by_writer (
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
    writer     TEXT    NOT NULL DEFAULT '', -- the `driftd serve` process that wrote this partial
    PRIMARY KEY (dataset, stage, kind, run_id, part, start_ms, writer)
);
INSERT INTO profiles_by_writer
    (dataset, stage, kind, run_id, part, start_ms, end_ms, rows, body, updated_ms, writer)
    SELECT dataset, stage, kind, run_id, part, start_ms, end_ms, rows, body, updated_ms, ''
    FROM profiles;
DROP TABLE profiles;
ALTER TABLE profiles_by_writer RENAME TO profiles;
CREATE INDEX profiles_by_end ON profiles (dataset, kind, end_ms);
