-- Version 1: clients, events and request statistics.
--
-- Portable SQL (SQLite and PostgreSQL): the only dialect difference is the events id column,
-- written {{id_primary_key}} and filled in per dialect by volact.sql.migrations. Times are
-- BIGINT Unix seconds bound by the application; nothing here computes time.

-- One row per CMID and product group. A CMID is counted in its group while it is not blocked
-- and its last_seen is inside the count window (30 days).
CREATE TABLE clients (
    cmid        VARCHAR(36)  NOT NULL,
    group_id    VARCHAR(64)  NOT NULL,
    product     VARCHAR(64)  NOT NULL,
    fingerprint VARCHAR(128) NOT NULL,
    machine     VARCHAR(255) NOT NULL,
    state       VARCHAR(32)  NOT NULL,
    blocked     SMALLINT     NOT NULL DEFAULT 0,
    first_seen  BIGINT       NOT NULL,
    last_seen   BIGINT       NOT NULL,
    valid_until BIGINT,
    PRIMARY KEY (cmid, group_id)
);

-- The per-request count is a range of this index (group, unblocked, last_seen >= cutoff) read
-- with a LIMIT, so it costs O(threshold) however many clients a group has. Lookups of one
-- client and block/unblock by CMID use the primary key (its prefix is cmid).
CREATE INDEX clients_count ON clients (group_id, blocked, last_seen);

-- The event log, pruned by the host service (age and row count).
CREATE TABLE events (
    id       {{id_primary_key}},
    at       BIGINT      NOT NULL,
    kind     VARCHAR(64) NOT NULL,
    cmid     VARCHAR(36),
    group_id VARCHAR(64),
    details  TEXT        NOT NULL
);

CREATE INDEX events_at ON events (at);

CREATE INDEX events_kind ON events (kind, id);

-- Request statistics as named counters: total, failed, outcome.<outcome>, state.<state>.
CREATE TABLE statistics (
    name  VARCHAR(64) PRIMARY KEY,
    value BIGINT      NOT NULL
);
