-- Each evaluation's drift scores, one compact row per dataset and evaluation: the history the
-- daemon's page draws. Expired with the windows (`retention`).
CREATE TABLE score_history (
    dataset      TEXT   NOT NULL,
    evaluated_ms BIGINT NOT NULL,
    scores       TEXT   NOT NULL,   -- JSON object: feature -> [score or null, threshold, drifted 0|1]
    PRIMARY KEY (dataset, evaluated_ms)
);
