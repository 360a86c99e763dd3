-- API tokens: only a token's SHA-256 hash is kept; the token is shown once, when made.
CREATE TABLE api_tokens (
    name       TEXT PRIMARY KEY NOT NULL,
    role       TEXT NOT NULL,                 -- read | admin
    hash       BLOB NOT NULL UNIQUE,          -- 32 bytes
    created_at INTEGER NOT NULL,
    revoked_at INTEGER                        -- set when revoked; the row stays for the record
);
