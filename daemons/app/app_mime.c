/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	app_mime - content types of static files by extension
 * SYNOPSIS
 *	app_mime_type()
 * DESCRIPTION
 *	A fixed table in the spirit of nginx's mime.types, with the types
 *	browsers insist on today (text/javascript, application/wasm for
 *	streaming compilation, font/woff2). Every text type declares UTF-8 so
 *	browsers do not guess. The extension is what follows the last '.' of
 *	the last path segment; a leading dot (".profile") is not one.
 * DIAGNOSTICS
 *	None; an unknown extension is application/octet-stream.
 */
#include "config.h"

/* system */
#include <stddef.h>
#include <string.h>
#include <strings.h>

/* local */
#include "app.h"

#define UTF8 "; charset=utf-8"

static const struct {
    const char *ext;
    const char *type;
} types[] = {
    {"html", "text/html" UTF8},
    {"htm", "text/html" UTF8},
    {"css", "text/css" UTF8},
    {"js", "text/javascript" UTF8},
    {"mjs", "text/javascript" UTF8},
    {"json", "application/json"},
    {"map", "application/json"},
    {"webmanifest", "application/manifest+json"},
    {"txt", "text/plain" UTF8},
    {"md", "text/markdown" UTF8},
    {"csv", "text/csv" UTF8},
    {"xml", "text/xml" UTF8},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"ico", "image/x-icon"},
    {"webp", "image/webp"},
    {"avif", "image/avif"},
    {"wasm", "application/wasm"},
    {"pdf", "application/pdf"},
    {"woff2", "font/woff2"},
    {"woff", "font/woff"},
    {"ttf", "font/ttf"},
    {"otf", "font/otf"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"mp3", "audio/mpeg"},
    {"ogg", "audio/ogg"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
};

const char *app_mime_type(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    const char *dot = strrchr(name, '.');

    if (dot != NULL && dot != name) {
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
            if (strcasecmp(dot + 1, types[i].ext) == 0)
                return types[i].type;
    }
    return "application/octet-stream";
}
