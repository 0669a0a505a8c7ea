/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the early_hints parser (qd_conf_hints_parse), which
 * the config check and the app (app_hints_send) both run. The input is the
 * value. Checked: it returns 0 or -1 (with a reason); on success it called
 * back once per '|'-separated entry, each path starting with '/' and free
 * of blanks, each Link value starting with '<', holding a '>', trimmed and
 * free of '|'; and a parse stops calling back at the first bad entry.
 */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qd_conf.h"
#include "qd_log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct hint_check {
    size_t calls;
    size_t chars; /* path and link bytes seen */
} hint_check;

/* on_hint - check one entry the parser handed out */
static void on_hint(void *arg, const char *path, const char *link)
{
    hint_check *h = arg;
    size_t ll = strlen(link);

    if (path[0] != '/' || strpbrk(path, " \t|") != NULL)
        qd_panic("hints: bad path \"%s\"", path);
    if (link[0] != '<' || strchr(link, '>') == NULL || strchr(link, '|') != NULL)
        qd_panic("hints: bad link \"%s\"", link);
    if (link[ll - 1] == ' ' || link[ll - 1] == '\t' || link[ll - 1] == '\r')
        qd_panic("hints: link not trimmed \"%s\"", link);
    h->calls++;
    h->chars += strlen(path) + ll;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *value = malloc(size + 1);
    const char *why = NULL;
    hint_check h = {0, 0};
    size_t bars = 0, len;
    bool is_blank = true;

    memcpy(value, data, size);
    value[size] = '\0';
    len = strlen(value);
    for (size_t i = 0; i < len; i++) {
        bars += value[i] == '|';
        if (value[i] != ' ' && value[i] != '\t' && value[i] != '\r')
            is_blank = false;
    }
    int rv = qd_conf_hints_parse(value, on_hint, &h, &why);
    if (rv == 0) {
        size_t want = is_blank ? 0 : bars + 1;
        if (h.calls != want)
            qd_panic("hints: %zu entries called back, %zu expected", h.calls, want);
    } else if (rv == -1) {
        if (why == NULL || h.calls > bars)
            qd_panic("hints: failed without a reason or after every entry");
    } else {
        qd_panic("hints: returned %d", rv);
    }
    if (h.chars > len)
        qd_panic("hints: more output than input");
    /* A value the parser accepts parses the same without a callback. */
    if (qd_conf_hints_parse(value, NULL, NULL, &why) != rv)
        qd_panic("hints: result depends on the callback");
    free(value);
    return 0;
}
