-- Whether a notifier is failing is read from its latest finished delivery (sent or failed), by
-- every replica alike: this index finds it without reading the whole outbox.
CREATE INDEX outbox_finished ON outbox (notifier, state, next_attempt_ms);
