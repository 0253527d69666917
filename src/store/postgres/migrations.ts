// Versioned schema, the PostgreSQL twin of sqlite/migrations.ts: same tables, same rules. A
// migration that has run is recorded in schema_migrations and never runs again; a new one is
// appended here, never edited in place once released.
export const postgresMigrations: readonly { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: "event log and read models",
    sql: `
      CREATE TABLE events (
        position       bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        instance_id    text        NOT NULL,
        aggregate_type text        NOT NULL,
        aggregate_id   text        NOT NULL,
        sequence       bigint      NOT NULL,
        event_type     text        NOT NULL,
        payload        jsonb,
        creator        text        NOT NULL,
        owner          text        NOT NULL,
        created_at     timestamptz NOT NULL,
        -- The per-aggregate sequence is what makes two racing writers conflict. The store tells
        -- this violation from the read models' ones by its name.
        CONSTRAINT events_aggregate_sequence UNIQUE (instance_id, aggregate_type, aggregate_id, sequence)
      );
      -- readLog pages through one instance in position order; without this it scans every instance.
      CREATE INDEX events_instance_position ON events (instance_id, position);
      -- One instance per database; the singleton key makes two nodes that bootstrap at the
      -- same moment conflict instead of creating two instances.
      CREATE TABLE instances (
        singleton      smallint PRIMARY KEY CHECK (singleton = 1),
        id             text     NOT NULL UNIQUE,
        name           text     NOT NULL,
        default_org_id text     NOT NULL
      );
      CREATE TABLE orgs (
        instance_id text   NOT NULL,
        id          text   NOT NULL,
        name        text   NOT NULL,
        sequence    bigint NOT NULL,
        PRIMARY KEY (instance_id, id)
      );
      -- One row per user: the folded state, which doubles as the snapshot commands start from.
      CREATE TABLE users (
        instance_id text    NOT NULL,
        id          text    NOT NULL,
        org_id      text    NOT NULL,
        username    text    NOT NULL,
        deleted     boolean NOT NULL,
        sequence    bigint  NOT NULL,
        state       jsonb   NOT NULL,
        PRIMARY KEY (instance_id, id)
      );
      CREATE UNIQUE INDEX users_username ON users (instance_id, lower(username)) WHERE NOT deleted;
      CREATE INDEX users_org ON users (instance_id, org_id);
      -- expires_at stays text: the port hands back exactly the string it was given, as SQLite does.
      CREATE TABLE tokens (
        instance_id text NOT NULL,
        token_id    text NOT NULL,
        token_hash  text NOT NULL,
        user_id     text NOT NULL,
        expires_at  text,
        PRIMARY KEY (instance_id, token_id)
      );
      CREATE UNIQUE INDEX tokens_hash ON tokens (instance_id, token_hash);
      CREATE INDEX tokens_user ON tokens (instance_id, user_id);
      CREATE TABLE members (
        instance_id text  NOT NULL,
        user_id     text  NOT NULL,
        scope_kind  text  NOT NULL,
        scope_id    text  NOT NULL,
        roles       jsonb NOT NULL,
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
        seq                 bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        instance_id         text        NOT NULL,
        id                  text        NOT NULL,
        user_id             text        NOT NULL,
        type                text        NOT NULL,
        recipient           text        NOT NULL,
        language            text        NOT NULL,
        -- NULL once the message is settled: a code does not outlive its delivery.
        sealed_text         text,
        created_at          timestamptz NOT NULL,
        expires_at          timestamptz,
        status              text        NOT NULL,
        attempts            integer     NOT NULL,
        next_attempt_at     timestamptz NOT NULL,
        claim               text,
        claimed_at          timestamptz,
        settled_at          timestamptz,
        note                text,
        provider_message_id text,
        UNIQUE (instance_id, id)
      );
      CREATE INDEX sms_outbox_due ON sms_outbox (instance_id, status, next_attempt_at);
      CREATE INDEX sms_outbox_user ON sms_outbox (instance_id, user_id);
      -- One row per message and limit it counts towards (user, number, prefix).
      CREATE TABLE sms_quota_use (
        instance_id text        NOT NULL,
        key         text        NOT NULL,
        used_at     timestamptz NOT NULL,
        message_id  text        NOT NULL
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
        instance_id text  NOT NULL,
        id          text  NOT NULL,
        user_id     text  NOT NULL,
        creator     text  NOT NULL,
        created_at  text  NOT NULL,
        state       jsonb NOT NULL,
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
      ALTER TABLE users
        ADD COLUMN kind         text NOT NULL DEFAULT '',
        ADD COLUMN user_state   text NOT NULL DEFAULT 'active',
        ADD COLUMN email        text NOT NULL DEFAULT '',
        ADD COLUMN phone        text NOT NULL DEFAULT '',
        ADD COLUMN given_name   text NOT NULL DEFAULT '',
        ADD COLUMN family_name  text NOT NULL DEFAULT '',
        ADD COLUMN nick_name    text NOT NULL DEFAULT '',
        ADD COLUMN display_name text NOT NULL DEFAULT '',
        ADD COLUMN created_at   text NOT NULL DEFAULT '';
      UPDATE users SET
        kind         = coalesce(state->>'kind', ''),
        user_state   = coalesce(state->>'state', 'active'),
        email        = coalesce(state->>'email', ''),
        phone        = coalesce(state->>'phone', ''),
        given_name   = coalesce(state#>>'{profile,givenName}', ''),
        family_name  = coalesce(state#>>'{profile,familyName}', ''),
        nick_name    = coalesce(state#>>'{profile,nickName}', ''),
        display_name = coalesce(state#>>'{profile,displayName}', ''),
        created_at   = coalesce(state->>'createdAt', '');
      -- Exact and prefix searches by address or number; "contains" searches scan one instance.
      CREATE INDEX users_email ON users (instance_id, lower(email)) WHERE NOT deleted;
      CREATE INDEX users_phone ON users (instance_id, phone) WHERE NOT deleted;
    `,
  },
  {
    version: 5,
    name: "sms outbox claims in the order of their index",
    // The claim asks for the oldest due messages not yet settled. Over sms_outbox_due it was a
    // bitmap scan that read every index entry with status 'pending' that a status change ever left
    // behind (bitmap scans never mark entries dead), so each claim grew slower until vacuum ran.
    // An index in the claim's own order over unsettled rows only is read in order and stops at
    // LIMIT, and a plain index scan marks the dead entries it meets.
    sql: `
      DROP INDEX sms_outbox_due;
      CREATE INDEX sms_outbox_unsettled ON sms_outbox (instance_id, next_attempt_at, seq)
        WHERE status IN ('pending', 'sending');
    `,
  },
  {
    version: 6,
    name: "a lost outbox claim fails its statement",
    // Recording a sent message settles its claim in the same transaction as the events. When the
    // claim was lost, the settle raises this, so that the whole append can go in one pipeline
    // and roll back by itself instead of waiting for a look at the settle's row count.
    sql: `
      CREATE FUNCTION latchkey_claim_lost(message_id text) RETURNS boolean LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'outbox message % is no longer claimed', message_id USING ERRCODE = 'LK001';
      END
      $$;
    `,
  },
  {
    version: 7,
    name: "sms outbox claims update in place",
    // A claim changes only columns no index holds, so PostgreSQL can write its new row version
    // beside the old one (a HOT update) instead of adding an entry to every index, which was most
    // of what a claim cost (docs/benchmarks.md, 16). That needs the unsettled index to be told
    // apart by settled_at, which only settling sets, rather than by status, which a claim changes;
    // and room on the page, which the fillfactor keeps for the claim and the settle.
    sql: `
      CREATE INDEX sms_outbox_unsettled_at ON sms_outbox (instance_id, next_attempt_at, seq)
        WHERE settled_at IS NULL;
      DROP INDEX sms_outbox_unsettled;
      ALTER INDEX sms_outbox_unsettled_at RENAME TO sms_outbox_unsettled;
      ALTER TABLE sms_outbox SET (fillfactor = 50);
    `,
  },
];
