-- Version 3 of the vendor store: one revocation list per host key (issue 20, per key).
--
-- A list names only the certificates of one host key (one customer's), with its own sequence,
-- so that one customer's churn cannot fill another's list and no answer carries another
-- customer's certificate ids. The lists of version 2 (one list for the whole vendor, file
-- format v1) are no longer served: clients and hosts refuse v1 lists, so they are dropped.

DROP TABLE revocation_lists;

CREATE TABLE revocation_lists (
    serial TEXT NOT NULL,
    sequence {{integer}} NOT NULL,
    issued_at {{integer}} NOT NULL,
    next_update {{integer}} NOT NULL,
    token TEXT NOT NULL,
    PRIMARY KEY (serial, sequence)
);
