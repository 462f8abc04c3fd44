-- The journal's records: one row per record, grouped in buckets (incidents,
-- runs, approvals, audit, …), in key order within a bucket, as in the
-- embedded journal. Values are what the embedded journal stores: JSON for
-- records, the incident ID for incident_keys, nothing for active_runs.
CREATE TABLE journal_records (
    bucket text  NOT NULL,
    key    bytea NOT NULL,
    value  bytea NOT NULL,
    PRIMARY KEY (bucket, key)
);

-- Each bucket's sequence (run-000042, audit sequence numbers). Updated
-- under the journal's writer lock, inside the writing transaction, so
-- numbers are rolled back with it and commit in order.
CREATE TABLE journal_sequences (
    bucket text   PRIMARY KEY,
    value  bigint NOT NULL
);

-- Alerts as received, until the engine has journaled their effects; a row
-- is deleted in the transaction that does. Sequence values of concurrent
-- intake transactions can commit out of order: rows are acknowledged one
-- by one, never by a high-water mark.
CREATE TABLE journal_outbox (
    seq         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    payload     bytea       NOT NULL
);

-- Leases elect the leader among replicas. epoch grows by one on every
-- acquisition; expires_at is by this database's clock.
CREATE TABLE journal_leases (
    name        text        PRIMARY KEY,
    holder      text        NOT NULL,
    epoch       bigint      NOT NULL,
    acquired_at timestamptz NOT NULL,
    renewed_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);
