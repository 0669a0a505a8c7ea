/* SPDX-License-Identifier: MIT */
#ifndef QD_APP_HARNESS_H
#define QD_APP_HARNESS_H

/*
 * The app's request handling (daemons/app/app_req.c and friends) without
 * its main(): one app_worker on a real channel, a socketpair whose far end
 * plays the worker. For tests/unit/test_app_req.c and tests/fuzz/fuzz_app.c.
 */
#include "app.h"

/*
 * app_harness_open sets up |a| (default configuration, document root
 * |root_fd|, access log |access_fd| or -1) with worker channel 0 and
 * returns it; |*peer| gets the far end (non-blocking).
 */
app_worker *app_harness_open(app *a, int root_fd, int access_fd, int *peer);

/*
 * app_harness_fill queues filler RESP_BODY messages on |w|'s channel (large
 * ones, then smaller) until it refuses even a small one; returns how many.
 */
int app_harness_fill(app_worker *w);

/*
 * app_harness_close frees what app_harness_open and the requests since
 * allocated (channel 0 must be closed already): a test's teardown, so that
 * the next app_harness_open does not lose them (LeakSanitizer).
 */
void app_harness_close(app *a);

#endif /* QD_APP_HARNESS_H */
