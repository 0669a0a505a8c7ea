/* SPDX-License-Identifier: MIT */
/*
 * Replays every file of a fuzz corpus (QD_CORPUS, or the directories on
 * the command line) through LLVMFuzzerTestOneInput without libFuzzer, so
 * that `make check` runs the committed corpus under the normal (or
 * sanitizer) build. Exit 0 when every input ran; 99 if the corpus is
 * missing.
 */
#include "config.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* run_dir - feed each regular file in |dir|; returns the count or -1 */
static int run_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    if (d == NULL) {
        perror(dir);
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        char path[4096];
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (f == NULL)
            continue;
        static uint8_t buf[1 << 20];
        size_t len = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        uint8_t *copy = malloc(len ? len : 1); /* exact size, so ASan sees overreads */
        memcpy(copy, buf, len);
        LLVMFuzzerTestOneInput(copy, len);
        free(copy);
        n++;
    }
    closedir(d);
    return n;
}

int main(int argc, char **argv)
{
    int total = 0;

    if (argc < 2) {
        int n = run_dir(QD_CORPUS);
        if (n <= 0)
            return 99;
        total = n;
    }
    for (int i = 1; i < argc; i++) {
        int n = run_dir(argv[i]);
        if (n < 0)
            return 99;
        total += n;
    }
    printf("replayed %d inputs\n", total);
    printf("%d passed, 0 failed\n", total);
    return 0;
}
