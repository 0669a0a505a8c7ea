/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	qd_privsep - drop privileges and chroot, in one place
 * SYNOPSIS
 *	qd_privsep_lookup(), qd_privsep_drop(), qd_privsep_is_root()
 * DESCRIPTION
 *	The user and group are resolved before chroot (NSS needs /etc), then
 *	chroot + chdir("/"), then the group list, gid and uid are set with
 *	setres*id so that saved ids are dropped too (OpenBSD proc.c). A
 *	non-root process (tests, a developer's shell) keeps its identity and
 *	says so once.
 * DIAGNOSTICS
 *	Failures are logged with qd_err and reported as -1.
 */
#include "config.h"

/* system */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* libshared */
#include "qd_log.h"
#include "qd_privsep.h"

bool qd_privsep_is_root(void)
{
    return geteuid() == 0;
}

int qd_privsep_lookup(const char *user, const char *group, uid_t *uid, gid_t *gid, char *err,
                      size_t errlen)
{
    struct passwd *pw;
    struct group *gr;

    errno = 0;
    pw = getpwnam(user);
    if (pw == NULL) {
        snprintf(err, errlen, "user \"%s\" does not exist", user);
        return -1;
    }
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    if (group && *group) {
        gr = getgrnam(group);
        if (gr == NULL) {
            snprintf(err, errlen, "group \"%s\" does not exist", group);
            return -1;
        }
        *gid = gr->gr_gid;
    }
    return 0;
}

int qd_privsep_drop(const char *user, const char *group, const char *jail)
{
    uid_t uid;
    gid_t gid;
    char err[256];

    if (!qd_privsep_is_root()) {
        qd_warn("not started as root (uid %ld): keeping this identity instead of %s:%s%s%s",
                (long)geteuid(), user, group, jail && *jail ? ", not chrooting to " : "",
                jail && *jail ? jail : "");
        return 0;
    }
    if (qd_privsep_lookup(user, group, &uid, &gid, err, sizeof(err)) < 0) {
        qd_err("cannot drop privileges: %s", err);
        return -1;
    }
    if (uid == 0) {
        qd_err("cannot drop privileges: user \"%s\" is root", user);
        return -1;
    }
    if (jail && *jail) {
        if (chdir(jail) < 0 || chroot(".") < 0 || chdir("/") < 0) {
            qd_err("chroot to %s: %s", jail, strerror(errno));
            return -1;
        }
    }
    if (setgroups(1, &gid) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0) {
        qd_err("cannot switch to %s:%s: %s", user, group, strerror(errno));
        return -1;
    }
    if (setuid(0) == 0 || seteuid(0) == 0) {
        qd_err("privileges could be regained after dropping them");
        return -1;
    }
    qd_debug("running as %s:%s%s%s", user, group, jail && *jail ? " in " : "",
             jail && *jail ? jail : "");
    return 0;
}
