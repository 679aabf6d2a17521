-- Leases: which `driftd serve` process sharing this database holds a role (the one evaluator,
-- 'leader'). A holder renews its lease before `expires_at_ms`; once it lapses, any process may
-- take it over. Every change of holder increments `term`, so a write made under an old term can
-- be told from one made under the new.
CREATE TABLE leases (
    name          TEXT   NOT NULL PRIMARY KEY,
    holder        TEXT   NOT NULL,   -- the holder's writer id
    term          BIGINT NOT NULL,   -- incremented on every change of holder
    expires_at_ms BIGINT NOT NULL
);
