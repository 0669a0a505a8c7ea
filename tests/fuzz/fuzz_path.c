/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the app's path decoding and confinement (daemons/
 * app/app_path.c). The first call builds a small document root in a
 * temporary directory: files, a subdirectory, a dotfile, a name that needs
 * %-encoding, symlinks that stay inside, symlinks that leave (relative,
 * absolute, to a directory outside), and a symlink loop; next to it lies
 * an "outside" directory with a secret. The input is a :path.
 *
 * Checked for every input:
 *   - app_path_decode either fails or gives a relative path without empty,
 *     "." or ".." segments that fits |cap| (a small |cap| from byte 0
 *     too), is idempotent through app_path_encode, and ends in index.html
 *     when it says so;
 *   - app_path_open and app_path_open_walk, given the decoded path and
 *     given the raw input itself (the opener is the second defence, it
 *     must hold alone), return either -errno or a descriptor whose
 *     st_dev/st_ino is one of the inodes found beneath the root (walked
 *     without following symlinks), matching the stat they filled in;
 *   - the walk, which follows no symlink, never opens anything openat2
 *     would not open to the same file;
 *   - no descriptor leaks.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qd_log.h"

#include "app.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INODES 64

static struct {
    bool ready;
    char base[64]; /* the temporary directory, removed at exit */
    int root_fd;
    int next_fd; /* the lowest free descriptor after setup */
    size_t count;
    dev_t dev[MAX_INODES];
    ino_t ino[MAX_INODES];
} tree;

/* put - create a file with some content */
static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (f == NULL)
        qd_panic("fuzz_path: %s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

/* collect - nftw callback: remember one inode beneath the root */
static int collect(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)path;
    (void)flag;
    (void)ftw;
    if (tree.count == MAX_INODES)
        qd_panic("fuzz_path: too many inodes");
    tree.dev[tree.count] = st->st_dev;
    tree.ino[tree.count] = st->st_ino;
    tree.count++;
    return 0;
}

/* unlink_one - nftw callback for cleanup */
static int unlink_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

/* cleanup - remove the temporary tree */
static void cleanup(void)
{
    nftw(tree.base, unlink_one, 16, FTW_PHYS | FTW_DEPTH);
}

/* setup - the document root and its hostile neighbourhood */
static void setup(void)
{
    char base[] = "/tmp/qd-fuzz-path-XXXXXX";
    char p[4096], q[4096];

    if (mkdtemp(base) == NULL)
        qd_panic("fuzz_path: mkdtemp: %s", strerror(errno));
    snprintf(tree.base, sizeof(tree.base), "%s", base);
    atexit(cleanup);
#define AT(...) (snprintf(p, sizeof(p), __VA_ARGS__), p)
    mkdir(AT("%s/root", base), 0755);
    mkdir(AT("%s/root/sub", base), 0755);
    mkdir(AT("%s/root/sub/deeper", base), 0755);
    mkdir(AT("%s/outside", base), 0755);
    put(AT("%s/outside/secret", base), "secret\n");
    put(AT("%s/outside/index.html", base), "outside\n");
    put(AT("%s/root/index.html", base), "<h1>root</h1>\n");
    put(AT("%s/root/a.txt", base), "a\n");
    put(AT("%s/root/.hidden", base), "dot\n");
    put(AT("%s/root/sp ace%%41.txt", base), "escaped\n");
    put(AT("%s/root/sub/index.html", base), "sub\n");
    put(AT("%s/root/sub/b.css", base), "b{}\n");
    put(AT("%s/root/sub/deeper/c.js", base), "c\n");
    symlink("a.txt", AT("%s/root/link_in", base));
    symlink("../a.txt", AT("%s/root/sub/link_up_in", base));
    symlink("sub", AT("%s/root/link_dir_in", base));
    symlink("../outside/secret", AT("%s/root/link_out", base));
    symlink("../../outside", AT("%s/root/sub/link_dir_out", base));
    snprintf(q, sizeof(q), "%s/outside/secret", base);
    symlink(q, AT("%s/root/link_abs", base));
    symlink("loop", AT("%s/root/loop", base));
    symlink("/", AT("%s/root/slash", base));
    symlink("..", AT("%s/root/dotdot", base));
    snprintf(q, sizeof(q), "%s/root", base);
#undef AT
    if (nftw(q, collect, 16, FTW_PHYS) != 0)
        qd_panic("fuzz_path: nftw %s: %s", q, strerror(errno));
    tree.root_fd = open(q, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (tree.root_fd < 0)
        qd_panic("fuzz_path: %s: %s", q, strerror(errno));
    tree.next_fd = dup(tree.root_fd);
    close(tree.next_fd);
    tree.ready = true;
}

/* is_inside - is |st| one of the inodes beneath the root? */
static bool is_inside(const struct stat *st)
{
    for (size_t i = 0; i < tree.count; i++)
        if (tree.dev[i] == st->st_dev && tree.ino[i] == st->st_ino)
            return true;
    return false;
}

/* try_open - open |rel| both ways and check what came back */
static void try_open(const char *rel)
{
    struct stat st, fst, wst;
    int fd, wfd;

    memset(&st, 0, sizeof(st));
    fd = app_path_open(tree.root_fd, rel, &st);
    if (fd >= 0) {
        if (fstat(fd, &fst) != 0 || fst.st_ino != st.st_ino || fst.st_dev != st.st_dev)
            qd_panic("path \"%s\": the stat filled in is not the descriptor's", rel);
        if (!is_inside(&fst))
            qd_panic("path \"%s\": app_path_open left the root (inode %llu)", rel,
                     (unsigned long long)fst.st_ino);
        close(fd);
    } else if (fd < -4095) {
        qd_panic("path \"%s\": app_path_open returned %d", rel, fd);
    }
    wfd = app_path_open_walk(tree.root_fd, rel, &wst);
    if (wfd >= 0) {
        if (fstat(wfd, &fst) != 0 || fst.st_ino != wst.st_ino)
            qd_panic("path \"%s\": the walk's stat is not the descriptor's", rel);
        if (!is_inside(&fst))
            qd_panic("path \"%s\": app_path_open_walk left the root", rel);
        if (fd < 0 || st.st_ino != wst.st_ino || st.st_dev != wst.st_dev)
            qd_panic("path \"%s\": the walk opened what openat2 did not (%d)", rel, fd);
        close(wfd);
    } else if (wfd < -4095) {
        qd_panic("path \"%s\": app_path_open_walk returned %d", rel, wfd);
    }
}

/* check_decoded - the textual contract of app_path_decode's output */
static void check_decoded(const char *raw, const char *out, size_t cap, bool is_index)
{
    size_t n = strlen(out);

    if (n == 0 || n >= cap || out[0] == '/' || out[n - 1] == '/')
        qd_panic("decode \"%s\": \"%s\" is empty, absolute or too long", raw, out);
    for (const char *s = out; *s != '\0';) {
        const char *e = strchr(s, '/');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == 0 || (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
            qd_panic("decode \"%s\": \"%s\" has an empty or dot segment", raw, out);
        s += len + (e != NULL);
    }
    if (is_index && (n < 10 || strcmp(out + n - 10, "index.html") != 0))
        qd_panic("decode \"%s\": index without index.html: \"%s\"", raw, out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char out[APP_PATH_MAX], again[APP_PATH_MAX], *enc, *raw, *small;
    bool is_index, is_index2;
    size_t cap;
    int rv;

    if (!tree.ready)
        setup();
    if (size < 1)
        return 0;
    cap = 1 + data[0] % 64;
    raw = malloc(size);
    memcpy(raw, data + 1, size - 1);
    raw[size - 1] = '\0';

    rv = app_path_decode(raw, out, sizeof(out), &is_index);
    if (rv == 0) {
        check_decoded(raw, out, sizeof(out), is_index);
        /* encode, decode again: the same path */
        size_t ecap = 3 * strlen(out) + 2;
        enc = malloc(ecap);
        if (app_path_encode(out, enc, ecap) != 0)
            qd_panic("encode \"%s\" does not fit %zu", out, ecap);
        if (app_path_decode(enc, again, sizeof(again), &is_index2) != 0 ||
            strcmp(again, out) != 0)
            qd_panic("decode \"%s\" -> \"%s\" -> \"%s\" -> \"%s\"", raw, out, enc, again);
        free(enc);
        try_open(out);
    } else if (rv != APP_PATH_EBAD && rv != APP_PATH_EDOT && rv != APP_PATH_ETOOLONG) {
        qd_panic("decode \"%s\": returned %d", raw, rv);
    }
    /* An exact-size small buffer: fits and agrees, or ETOOLONG (which may come
       before a later segment would have given EDOT). */
    small = malloc(cap);
    int srv = app_path_decode(raw, small, cap, &is_index2);
    if (srv == 0 && (rv != 0 || strcmp(small, out) != 0 || is_index2 != is_index))
        qd_panic("decode \"%s\": cap %zu gives \"%s\", full gives %d", raw, cap, small, rv);
    if (srv != 0 && srv != rv && srv != APP_PATH_ETOOLONG)
        qd_panic("decode \"%s\": cap %zu gives %d, full gives %d", raw, cap, srv, rv);
    free(small);

    /* The opener alone, on undecoded input. */
    try_open(raw[0] == '/' ? raw + 1 : raw);
    if (raw[0] == '/')
        try_open(raw);

    int probe = dup(tree.root_fd);
    close(probe);
    if (probe != tree.next_fd)
        qd_panic("path \"%s\": a descriptor leaked (next is %d, was %d)", raw, probe,
                 tree.next_fd);
    free(raw);
    return 0;
}
