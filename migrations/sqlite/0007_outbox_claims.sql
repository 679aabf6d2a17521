-- Any replica delivers the outbox. A replica claims a due entry before sending it: the claim's
-- token (unique per claim), its holder's writer id, and until when it holds. A claim whose
-- holder died lapses at `claimed_until_ms` and the entry is claimed again; recording an attempt
-- requires the token, so a holder whose claim lapsed and was taken over changes nothing.
ALTER TABLE outbox ADD COLUMN claim_token TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN claimed_until_ms BIGINT NOT NULL DEFAULT 0;

-- One send slot per notifier, shared by every replica: a replica sends only while it holds the
-- slot (taken when `next_allowed_ms` has passed), and on handing it back sets `next_allowed_ms`
-- to the end of its send plus the notifier's interval (one message per second for Slack).
CREATE TABLE notifier_pacing (
    notifier        TEXT   NOT NULL PRIMARY KEY,
    next_allowed_ms BIGINT NOT NULL,
    holder          TEXT   NOT NULL DEFAULT ''   -- the token of the claim that took the slot
);
