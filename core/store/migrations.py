"""The schema: one SQL script per version (``PRAGMA user_version`` counts the scripts applied).

Never edit a script that has shipped: append a new one.  :meth:`core.store.db.Database._migrate`
applies the missing ones, each in one transaction, when a database is opened.
"""
from __future__ import annotations

MIGRATIONS: list[str] = [
    # v1
    """
    CREATE TABLE campaigns (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        config TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE cycles (
        id INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
        number INTEGER NOT NULL,
        status TEXT NOT NULL,
        hypervolume REAL,
        n_beyond INTEGER,
        n_observations INTEGER,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        UNIQUE(campaign_id, number)
    );
    CREATE TABLE batches (
        id INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
        cycle INTEGER NOT NULL,
        status TEXT NOT NULL,
        strategy TEXT,
        joint_value REAL,
        info TEXT,
        created_at TEXT NOT NULL,
        approved_at TEXT,
        approved_by TEXT,
        finished_at TEXT
    );
    CREATE INDEX ix_batches_campaign ON batches(campaign_id, cycle);
    CREATE TABLE batch_candidates (
        id INTEGER PRIMARY KEY,
        batch_id INTEGER NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
        rank INTEGER NOT NULL,
        psmiles TEXT NOT NULL,
        key TEXT NOT NULL,
        name TEXT,
        pool_id TEXT,
        source TEXT NOT NULL DEFAULT 'acquisition',
        pred_mean TEXT,
        pred_std TEXT,
        ehvi REAL,
        p_beyond REAL,
        selected INTEGER NOT NULL DEFAULT 1,
        UNIQUE(batch_id, key)
    );
    CREATE TABLE calculations (
        id INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
        batch_id INTEGER REFERENCES batches(id),
        cycle INTEGER,
        psmiles TEXT NOT NULL,
        key TEXT NOT NULL,
        name TEXT,
        preset TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'queued',
        step TEXT,
        message TEXT,
        attempt INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL DEFAULT 3,
        interruptions INTEGER NOT NULL DEFAULT 0,
        reruns INTEGER NOT NULL DEFAULT 0,
        worker TEXT,
        dask_key TEXT,
        job_id TEXT,
        log_path TEXT,
        workdir TEXT,
        result TEXT,
        error_type TEXT,
        error_message TEXT,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT,
        updated_at TEXT NOT NULL,
        UNIQUE(batch_id, key)
    );
    CREATE INDEX ix_calc_campaign_status ON calculations(campaign_id, status);
    CREATE TABLE observations (
        id INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
        psmiles TEXT NOT NULL,
        key TEXT NOT NULL,
        name TEXT,
        "values" TEXT NOT NULL,
        source TEXT NOT NULL,
        cycle INTEGER NOT NULL DEFAULT 0,
        calculation_id INTEGER UNIQUE REFERENCES calculations(id),
        result TEXT,
        provenance TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX ix_obs_campaign ON observations(campaign_id);
    CREATE TABLE pool_extra (
        id INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
        psmiles TEXT NOT NULL,
        key TEXT NOT NULL,
        name TEXT,
        source TEXT,
        created_at TEXT NOT NULL,
        UNIQUE(campaign_id, key)
    );
    CREATE TABLE rejections (
        id INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        psmiles TEXT,
        reason TEXT,
        actor TEXT,
        created_at TEXT NOT NULL,
        restored_at TEXT,
        restored_by TEXT
    );
    CREATE INDEX ix_rej_campaign ON rejections(campaign_id, key);
    CREATE TABLE runners (
        campaign_id INTEGER PRIMARY KEY REFERENCES campaigns(id) ON DELETE CASCADE,
        pid INTEGER,
        host TEXT,
        status TEXT,
        started_at TEXT,
        heartbeat_at TEXT,
        heartbeat_epoch REAL,
        info TEXT
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        campaign_id INTEGER REFERENCES campaigns(id) ON DELETE CASCADE,
        ts TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        details TEXT
    );
    CREATE INDEX ix_audit_campaign ON audit(campaign_id, id);
    CREATE TABLE predictions (
        id INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
        cycle INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        data BLOB NOT NULL
    );
    CREATE TABLE descriptors (
        key TEXT PRIMARY KEY,
        vector BLOB NOT NULL
    );
    """,
    # v2: the store's own persistent random id (keys runner locks and work dirs, so two
    # databases in one folder, or one deleted and recreated at the same path, never share them)
    """
    CREATE TABLE store_meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    INSERT INTO store_meta(key, value) VALUES ('store_id', lower(hex(randomblob(8))));
    """,
    # v3: when the current attempt of a calculation started (``started_at`` is the first
    # attempt's); NULL while it waits in the queue.  Older rows count from their first start.
    """
    ALTER TABLE calculations ADD COLUMN attempt_started_at TEXT;
    UPDATE calculations SET attempt_started_at = started_at WHERE started_at IS NOT NULL;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


def _split_sql(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
