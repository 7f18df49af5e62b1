-- Version 2: the usage log for signed usage reports (issue 20; volact.core.usage).
--
-- usage_events is the hash chain of count-relevant events of this database (several hosts
-- sharing the database share one chain); usage_state is what the chain has said so far about
-- each client (so that the next scan appends only what changed); usage_heads are the chain
-- heads signed by a host's certified key, with that host's certificate.

CREATE TABLE usage_events (
    seq      BIGINT      PRIMARY KEY,
    at       BIGINT      NOT NULL,
    kind     VARCHAR(16) NOT NULL,
    group_id VARCHAR(64) NOT NULL,
    cmid     VARCHAR(36) NOT NULL,
    host_id  VARCHAR(64) NOT NULL,
    hash     VARCHAR(64) NOT NULL
);

CREATE TABLE usage_state (
    cmid      VARCHAR(36) NOT NULL,
    group_id  VARCHAR(64) NOT NULL,
    last_seen BIGINT      NOT NULL,
    blocked   SMALLINT    NOT NULL,
    counted   SMALLINT    NOT NULL,
    PRIMARY KEY (cmid, group_id)
);

-- The clients whose window ends first: what the next recording may find expired.
CREATE INDEX usage_state_counted ON usage_state (counted, last_seen);

-- name/value pairs of the log: the "watermark" (the newest last_seen recorded so far).
CREATE TABLE usage_meta (
    name  VARCHAR(64) PRIMARY KEY,
    value BIGINT      NOT NULL
);

CREATE TABLE usage_heads (
    seq         BIGINT      PRIMARY KEY,
    at          BIGINT      NOT NULL,
    host_id     VARCHAR(64) NOT NULL,
    token       TEXT        NOT NULL,
    certificate TEXT        NOT NULL
);

CREATE INDEX usage_heads_at ON usage_heads (at);
