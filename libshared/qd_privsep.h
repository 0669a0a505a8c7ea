/* SPDX-License-Identifier: MIT */
#ifndef QD_PRIVSEP_H
#define QD_PRIVSEP_H

#include <stdbool.h>
#include <sys/types.h>

/*
 * qd_privsep_lookup resolves |user| and |group| to ids. Returns 0, or -1
 * with a reason in |err| (|errlen| bytes).
 */
int qd_privsep_lookup(const char *user, const char *group, uid_t *uid, gid_t *gid, char *err,
                      size_t errlen);

/*
 * qd_privsep_drop gives up root for good: chroot to |jail| when it is not
 * NULL or empty, then setgroups/setresgid/setresuid to |user|:|group|, and
 * checks that root cannot be regained. When the process is not root it
 * logs one warning that it keeps its current identity (so tests run
 * unprivileged) and returns 0. Returns 0, or -1 with the reason logged.
 */
int qd_privsep_drop(const char *user, const char *group, const char *jail);

/* qd_privsep_is_root tells whether the effective uid is 0. */
bool qd_privsep_is_root(void);

#endif /* QD_PRIVSEP_H */
