/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	stats_db - the SQLite database: schema and writes
 * SYNOPSIS
 *	stats_db_open(), stats_db_close(), stats_db_process_event()
 * DESCRIPTION
 *	The stats daemon is the database's only writer. The file is opened in
 *	WAL mode (readers such as quicctl report and the sqlite3 shell never
 *	block it) with synchronous=NORMAL; the schema carries its version in
 *	PRAGMA user_version and is created or migrated at open. All writes
 *	use prepared statements.
 *
 *	Schema version 1:
 *	  process_events(id, time_ms, event, role, instance, pid,
 *	                 generation, restarts, exit_status, signal)
 * DIAGNOSTICS
 *	Errors are logged with sqlite3_errmsg; a failed write is counted and
 *	the record dropped, never fatal.
 */
#include "config.h"

/* system */
#include <stdio.h>
#include <string.h>

/* libraries */
#include <sqlite3.h>

/* libshared */
#include "qd_ipc.h"
#include "qd_log.h"
#include "qd_proc.h"

/* local */
#include "stats.h"

static const char *const schema_v1 =
    "CREATE TABLE IF NOT EXISTS process_events ("
    "  id INTEGER PRIMARY KEY,"
    "  time_ms INTEGER NOT NULL,"
    "  event TEXT NOT NULL,"
    "  role TEXT NOT NULL,"
    "  instance INTEGER,"
    "  pid INTEGER,"
    "  generation INTEGER,"
    "  restarts INTEGER,"
    "  exit_status INTEGER,"
    "  signal INTEGER);"
    "CREATE INDEX IF NOT EXISTS process_events_time ON process_events(time_ms);";

/* exec - run SQL, logging failures */
static int exec(stats *s, const char *sql)
{
    char *msg = NULL;

    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        qd_err("sqlite: %s", msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* user_version - the schema version stored in the file */
static int user_version(stats *s)
{
    sqlite3_stmt *st;
    int v = -1;

    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

int stats_db_open(stats *s, const char *path)
{
    int rv = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);

    if (rv != SQLITE_OK) {
        qd_err("cannot open stats database %s: %s", path,
               s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rv));
        goto fail;
    }
    sqlite3_busy_timeout(s->db, 2000);
    if (exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;") < 0)
        goto fail;
    int v = user_version(s);
    if (v < 0)
        goto fail;
    if (v > STATS_SCHEMA_VERSION) {
        qd_err("stats database %s has schema version %d; this quicd knows %d", path, v,
               STATS_SCHEMA_VERSION);
        goto fail;
    }
    if (v < STATS_SCHEMA_VERSION) {
        if (exec(s, "BEGIN") < 0 || exec(s, schema_v1) < 0 ||
            exec(s, "PRAGMA user_version = 1") < 0 || exec(s, "COMMIT") < 0)
            goto fail;
        qd_info("stats database %s: schema version %d created", path, STATS_SCHEMA_VERSION);
    }
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO process_events (time_ms, event, role, instance, pid, "
                           "generation, restarts, exit_status, signal) "
                           "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                           -1, &s->ins_event, NULL) != SQLITE_OK) {
        qd_err("sqlite prepare: %s", sqlite3_errmsg(s->db));
        goto fail;
    }
    return 0;
fail:
    stats_db_close(s);
    return -1;
}

void stats_db_close(stats *s)
{
    sqlite3_finalize(s->ins_event);
    s->ins_event = NULL;
    if (s->db)
        sqlite3_close(s->db);
    s->db = NULL;
}

/* bind_opt - bind an optional u32 field, NULL when absent */
static void bind_opt(sqlite3_stmt *st, int col, const qd_ipc_msg *m, uint16_t tag)
{
    uint32_t v;

    if (qd_ipc_get_u32(m, tag, &v) == 0)
        sqlite3_bind_int64(st, col, v);
    else
        sqlite3_bind_null(st, col);
}

int stats_db_process_event(stats *s, const qd_ipc_msg *m)
{
    uint32_t ev, role;
    uint64_t t;
    sqlite3_stmt *st = s->ins_event;
    int rv;

    if (qd_ipc_get_u32(m, QD_F_EVENT, &ev) < 0 || qd_ipc_get_u32(m, QD_F_ROLE, &role) < 0 ||
        qd_ipc_get_u64(m, QD_F_TIME_MS, &t) < 0 || role >= QD_ROLE_COUNT)
        return -1;
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)t);
    sqlite3_bind_text(st, 2, qd_proc_event_name((int)ev), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, qd_role_name((qd_role)role), -1, SQLITE_STATIC);
    bind_opt(st, 4, m, QD_F_INSTANCE);
    bind_opt(st, 5, m, QD_F_PID);
    bind_opt(st, 6, m, QD_F_GENERATION);
    bind_opt(st, 7, m, QD_F_RESTARTS);
    bind_opt(st, 8, m, QD_F_EXIT_STATUS);
    bind_opt(st, 9, m, QD_F_SIGNAL);
    rv = sqlite3_step(st);
    sqlite3_reset(st);
    if (rv != SQLITE_DONE) {
        static qd_log_limit lim;
        s->write_errors++;
        qd_log_limited(&lim, QD_LOG_ERR, "cannot record event: %s", sqlite3_errmsg(s->db));
        return -2;
    }
    s->records++;
    return 0;
}
