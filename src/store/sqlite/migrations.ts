// Versioned schema. A migration that has run is recorded in schema_migrations and never runs
// again; a new one is appended here, never edited in place once released.
export const sqliteMigrations: readonly { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: "event log and read models",
    sql: `
      CREATE TABLE events (
        position       INTEGER PRIMARY KEY AUTOINCREMENT,
        instance_id    TEXT    NOT NULL,
        aggregate_type TEXT    NOT NULL,
        aggregate_id   TEXT    NOT NULL,
        sequence       INTEGER NOT NULL,
        event_type     TEXT    NOT NULL,
        payload        TEXT,
        creator        TEXT    NOT NULL,
        owner          TEXT    NOT NULL,
        created_at     TEXT    NOT NULL,
        -- The per-aggregate sequence is what makes two racing writers conflict.
        UNIQUE (instance_id, aggregate_type, aggregate_id, sequence)
      );
      -- One instance per database; the singleton key makes two nodes that bootstrap at the
      -- same moment conflict instead of creating two instances.
      CREATE TABLE instances (
        singleton      INTEGER PRIMARY KEY CHECK (singleton = 1),
        id             TEXT NOT NULL UNIQUE,
        name           TEXT NOT NULL,
        default_org_id TEXT NOT NULL
      );
      CREATE TABLE orgs (
        instance_id TEXT    NOT NULL,
        id          TEXT    NOT NULL,
        name        TEXT    NOT NULL,
        sequence    INTEGER NOT NULL,
        PRIMARY KEY (instance_id, id)
      );
      -- One row per user: the folded state, which doubles as the snapshot commands start from.
      CREATE TABLE users (
        instance_id TEXT    NOT NULL,
        id          TEXT    NOT NULL,
        org_id      TEXT    NOT NULL,
        username    TEXT    NOT NULL,
        deleted     INTEGER NOT NULL,
        sequence    INTEGER NOT NULL,
        state       TEXT    NOT NULL,
        PRIMARY KEY (instance_id, id)
      );
      CREATE UNIQUE INDEX users_username ON users (instance_id, lower(username)) WHERE deleted = 0;
      CREATE INDEX users_org ON users (instance_id, org_id);
      CREATE TABLE tokens (
        instance_id TEXT NOT NULL,
        token_id    TEXT NOT NULL,
        token_hash  TEXT NOT NULL,
        user_id     TEXT NOT NULL,
        expires_at  TEXT,
        PRIMARY KEY (instance_id, token_id)
      );
      CREATE UNIQUE INDEX tokens_hash ON tokens (instance_id, token_hash);
      CREATE INDEX tokens_user ON tokens (instance_id, user_id);
      CREATE TABLE members (
        instance_id TEXT NOT NULL,
        user_id     TEXT NOT NULL,
        scope_kind  TEXT NOT NULL,
        scope_id    TEXT NOT NULL,
        roles       TEXT NOT NULL,
        PRIMARY KEY (instance_id, user_id, scope_id)
      );
    `,
  },
  {
    version: 2,
    name: "sms outbox and sending limits",
    sql: `
      -- Messages written with the events that need them; a worker sends them. seq keeps them
      -- in the order they were written.
      CREATE TABLE sms_outbox (
        seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
        instance_id         TEXT    NOT NULL,
        id                  TEXT    NOT NULL,
        user_id             TEXT    NOT NULL,
        type                TEXT    NOT NULL,
        recipient           TEXT    NOT NULL,
        language            TEXT    NOT NULL,
        -- NULL once the message is settled: a code does not outlive its delivery.
        sealed_text         TEXT,
        created_at          TEXT    NOT NULL,
        expires_at          TEXT,
        status              TEXT    NOT NULL,
        attempts            INTEGER NOT NULL,
        next_attempt_at     TEXT    NOT NULL,
        claim               TEXT,
        claimed_at          TEXT,
        settled_at          TEXT,
        note                TEXT,
        provider_message_id TEXT,
        UNIQUE (instance_id, id)
      );
      CREATE INDEX sms_outbox_due ON sms_outbox (instance_id, status, next_attempt_at);
      CREATE INDEX sms_outbox_user ON sms_outbox (instance_id, user_id);
      -- One row per message and limit it counts towards (user, number, prefix).
      CREATE TABLE sms_quota_use (
        instance_id TEXT NOT NULL,
        key         TEXT NOT NULL,
        used_at     TEXT NOT NULL,
        message_id  TEXT NOT NULL
      );
      CREATE INDEX sms_quota_use_key ON sms_quota_use (instance_id, key, used_at);
    `,
  },
  {
    version: 3,
    name: "sessions",
    sql: `
      -- One row per session that is not terminated: the folded state, the snapshot commands
      -- start from and what a bearer session token is checked against.
      CREATE TABLE sessions (
        instance_id TEXT NOT NULL,
        id          TEXT NOT NULL,
        user_id     TEXT NOT NULL,
        creator     TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        state       TEXT NOT NULL,
        PRIMARY KEY (instance_id, id)
      );
      CREATE INDEX sessions_user ON sessions (instance_id, user_id);
      CREATE INDEX sessions_creator ON sessions (instance_id, creator);
    `,
  },
  {
    version: 4,
    name: "users searchable by email, phone, names and state",
    // ListUsers filters and sorts by these; they are copied out of the state so that SQL can
    // index and compare them, and filled here for the users written before this migration.
    sql: `
      ALTER TABLE users ADD COLUMN kind         TEXT NOT NULL DEFAULT '';
      ALTER TABLE users ADD COLUMN user_state   TEXT NOT NULL DEFAULT 'active';
      ALTER TABLE users ADD COLUMN email        TEXT NOT NULL DEFAULT '';
      ALTER TABLE users ADD COLUMN phone        TEXT NOT NULL DEFAULT '';
      ALTER TABLE users ADD COLUMN given_name   TEXT NOT NULL DEFAULT '';
      ALTER TABLE users ADD COLUMN family_name  TEXT NOT NULL DEFAULT '';
      ALTER TABLE users ADD COLUMN nick_name    TEXT NOT NULL DEFAULT '';
      ALTER TABLE users ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
      ALTER TABLE users ADD COLUMN created_at   TEXT NOT NULL DEFAULT '';
      UPDATE users SET
        kind         = coalesce(json_extract(state, '$.kind'), ''),
        user_state   = coalesce(json_extract(state, '$.state'), 'active'),
        email        = coalesce(json_extract(state, '$.email'), ''),
        phone        = coalesce(json_extract(state, '$.phone'), ''),
        given_name   = coalesce(json_extract(state, '$.profile.givenName'), ''),
        family_name  = coalesce(json_extract(state, '$.profile.familyName'), ''),
        nick_name    = coalesce(json_extract(state, '$.profile.nickName'), ''),
        display_name = coalesce(json_extract(state, '$.profile.displayName'), ''),
        created_at   = coalesce(json_extract(state, '$.createdAt'), '');
      -- Exact and prefix searches by address or number; "contains" searches scan one instance.
      CREATE INDEX users_email ON users (instance_id, lower(email)) WHERE deleted = 0;
      CREATE INDEX users_phone ON users (instance_id, phone) WHERE deleted = 0;
    `,
  },
  {
    version: 5,
    name: "usernames and addresses compare without regard to case in every script",
    // lk_lower is Latchkey's (functions.ts). Two users whose names differ only in the case of
    // a letter beyond ASCII stop this migration, and Latchkey from starting, until one is renamed.
    sql: `
      DROP INDEX users_username;
      CREATE UNIQUE INDEX users_username ON users (instance_id, lk_lower(username)) WHERE deleted = 0;
      DROP INDEX users_email;
      CREATE INDEX users_email ON users (instance_id, lk_lower(email)) WHERE deleted = 0;
    `,
  },
];
