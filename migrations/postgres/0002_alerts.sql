-- Alerts: one row per (rule, dataset) fingerprint, with its state.
CREATE TABLE alerts (
    fingerprint       TEXT   NOT NULL PRIMARY KEY,
    rule              TEXT   NOT NULL,
    dataset           TEXT   NOT NULL,
    severity          TEXT   NOT NULL,
    state             TEXT   NOT NULL,            -- 'pending' | 'firing' | 'resolved'
    active_since_ms   BIGINT NOT NULL,
    firing_since_ms   BIGINT NOT NULL DEFAULT 0,  -- 0: never fired
    resolved_ms       BIGINT NOT NULL DEFAULT 0,  -- 0: not resolved
    updated_ms        BIGINT NOT NULL,
    silenced_until_ms BIGINT NOT NULL DEFAULT 0,
    acknowledged      BIGINT NOT NULL DEFAULT 0,
    last_delivery     TEXT   NOT NULL DEFAULT '',
    summary           TEXT   NOT NULL DEFAULT ''  -- the latest notification, JSON
);

-- The notification outbox: written in the transaction that changes an alert's state, delivered
-- at least once by the sender, never lost across restarts.
CREATE TABLE outbox (
    id              BIGSERIAL PRIMARY KEY,
    fingerprint     TEXT   NOT NULL,
    notifier        TEXT   NOT NULL,
    event           TEXT   NOT NULL,              -- 'firing' | 'resolved'
    payload         TEXT   NOT NULL,              -- the notification, JSON
    created_ms      BIGINT NOT NULL,
    next_attempt_ms BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    state           TEXT   NOT NULL DEFAULT 'pending',  -- 'pending' | 'sent' | 'failed'
    last_outcome    TEXT   NOT NULL DEFAULT ''
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_ms);
