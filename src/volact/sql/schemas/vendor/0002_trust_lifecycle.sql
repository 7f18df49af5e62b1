-- Version 2 of the vendor store: the trust lifecycle (issue 20).
--
-- * Every host certification records how it ended: ``ended_at`` and ``end_reason``
--   ('superseded' by a later certification of the same host id, 'revoked' by the vendor,
--   'renewed' by a renewal with the same host key), the reason given for a revocation, and the
--   certificate that replaced it. ``kind`` says whether a row is a certification (a new host
--   key: it counts towards the re-certification limit) or a renewal (the same host key, proven
--   by its signature: it counts nothing).
-- * A host key (channel 'host') can be revoked as a whole: nothing more is certified with it.
-- * Every revocation list the vendor signed, newest = highest sequence.

ALTER TABLE host_certifications ADD COLUMN kind TEXT NOT NULL DEFAULT 'certification';
ALTER TABLE host_certifications ADD COLUMN ended_at {{integer}};
ALTER TABLE host_certifications ADD COLUMN end_reason TEXT;
ALTER TABLE host_certifications ADD COLUMN revocation_reason TEXT;
ALTER TABLE host_certifications ADD COLUMN replaced_by TEXT;

CREATE UNIQUE INDEX host_certifications_by_cert ON host_certifications (cert_id);

ALTER TABLE keys ADD COLUMN revoked_at {{integer}};
ALTER TABLE keys ADD COLUMN revocation_reason TEXT;

CREATE TABLE revocation_lists (
    sequence {{integer}} PRIMARY KEY,
    issued_at {{integer}} NOT NULL,
    next_update {{integer}} NOT NULL,
    token TEXT NOT NULL
);

ALTER TABLE root_keys ADD COLUMN storage TEXT;
