-- Version 1 of the vendor store: identity, root keys, groups, products, keys, and every
-- activation made with a key (host certifications, MAK activations).
--
-- Written for SQLite; for PostgreSQL {{integer}} becomes BIGINT and {{id_primary_key}} an
-- identity column (volact.sql.migrations fills them in).

CREATE TABLE meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE root_keys (
    seq {{integer}} PRIMARY KEY,
    key_id TEXT NOT NULL UNIQUE,
    public_key TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'valid', 'retired')),
    created_at {{integer}} NOT NULL,
    retired_at {{integer}}
);

CREATE TABLE groups (
    group_id TEXT PRIMARY KEY,
    policy TEXT NOT NULL,
    created_at {{integer}} NOT NULL,
    updated_at {{integer}} NOT NULL
);

CREATE TABLE products (
    product_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    group_id TEXT NOT NULL REFERENCES groups (group_id),
    oob_grace {{integer}} NOT NULL,
    rearm_limit {{integer}} NOT NULL,
    srv_service TEXT NOT NULL,
    activation_url TEXT,
    created_at {{integer}} NOT NULL
);

CREATE TABLE keys (
    serial TEXT PRIMARY KEY,
    channel TEXT NOT NULL CHECK (channel IN ('gvlk', 'host', 'mak')),
    key_text TEXT NOT NULL,
    product_id TEXT REFERENCES products (product_id),
    groups TEXT,
    customer TEXT,
    activation_limit {{integer}},
    validity {{integer}},
    used {{integer}} NOT NULL DEFAULT 0,
    created_at {{integer}} NOT NULL
);

CREATE TABLE host_certifications (
    id {{id_primary_key}},
    serial TEXT NOT NULL REFERENCES keys (serial),
    request_id TEXT NOT NULL UNIQUE,
    host_id TEXT NOT NULL,
    host_key TEXT NOT NULL,
    machine TEXT NOT NULL,
    cert_id TEXT NOT NULL,
    root_key_id TEXT NOT NULL,
    via TEXT NOT NULL,
    address TEXT,
    issued_at {{integer}} NOT NULL,
    not_after {{integer}} NOT NULL
);

CREATE INDEX host_certifications_by_key ON host_certifications (serial, host_id);

CREATE TABLE mak_activations (
    id {{id_primary_key}},
    serial TEXT NOT NULL REFERENCES keys (serial),
    cmid TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    product_id TEXT NOT NULL,
    machine TEXT NOT NULL,
    via TEXT NOT NULL,
    address TEXT,
    first_at {{integer}} NOT NULL,
    last_at {{integer}} NOT NULL,
    issues {{integer}} NOT NULL,
    UNIQUE (serial, cmid, fingerprint)
);
