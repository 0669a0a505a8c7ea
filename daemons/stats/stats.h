/* SPDX-License-Identifier: MIT */
#ifndef QD_STATS_H
#define QD_STATS_H

#include <stdint.h>

#include <sqlite3.h>
#include <uv.h>

#include "qd_child.h"

#define STATS_SCHEMA_VERSION 1

typedef struct stats {
    qd_child child;
    sqlite3 *db;
    sqlite3_stmt *ins_event;
    uv_poll_t in_poll;
    uint64_t records;
    uint64_t write_errors;
} stats;

/* stats_db.c */
int stats_db_open(stats *s, const char *path);
void stats_db_close(stats *s);
int stats_db_process_event(stats *s, const qd_ipc_msg *m);

#endif /* QD_STATS_H */
