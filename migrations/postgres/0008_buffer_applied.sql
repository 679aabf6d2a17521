-- The ingest buffer's messages already counted. A replica writes its partial of a window and the
-- stream sequences of the JetStream messages folded into it in one transaction; a message
-- redelivered because that replica died before acknowledging it is found here and not folded
-- again. Rows at or below the consumer's acknowledgement floor are deleted (JetStream delivers
-- none of those messages again), and so are those of an earlier stream of the same name.
CREATE TABLE buffer_applied (
    stream     TEXT   NOT NULL,   -- the stream's name
    created_ns BIGINT NOT NULL,   -- its creation time: a stream created anew numbers from 1 again
    sequence   BIGINT NOT NULL,   -- the message's stream sequence
    applied_ms BIGINT NOT NULL,
    PRIMARY KEY (stream, created_ns, sequence)
);
