/*
 * static.c - the dashboard's files, compiled into the binary (services/gateway/static/).
 *
 * Only the embedded files exist: a path is looked up exactly in their list, so
 * "..", encoded slashes or absolute paths name nothing and get 404 — there is no
 * file system behind this to escape into. "/" is index.html. Answers carry an
 * ETag (a conditional GET gets 304) and headers that keep the page to itself:
 * scripts and styles from this origin only, no framing, no sniffing.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "gateway.h"

typedef struct {
    const char *path;
    const unsigned char *data;
    size_t size;
} px_embedded_file_t;

extern const px_embedded_file_t gw_static_files[];

static const struct {
    const char *ext;
    const char *type;
} s_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".json", "application/json"},
    {".webmanifest", "application/manifest+json"},
    {".txt", "text/plain; charset=utf-8"},
};

static const char *s_type(const char *path)
{
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof s_types / sizeof s_types[0]; i++) {
        if (strcmp(dot, s_types[i].ext) == 0) {
            return s_types[i].type;
        }
    }
    return "application/octet-stream";
}

bool gw_static_serve(gw_req_t *req)
{
    const char *path = gw_req_path(req);
    const char *method = gw_req_method(req);
    if (strcmp(path, "/") == 0) {
        path = "/index.html";
    }
    const px_embedded_file_t *f = NULL;
    for (size_t i = 0; gw_static_files[i].path; i++) {
        if (strcmp(gw_static_files[i].path, path) == 0) {
            f = &gw_static_files[i];
            break;
        }
    }
    if (!f) {
        return false;
    }
    gw_req_set_route(req, "static");
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        const char *h[] = {"Allow", "GET, HEAD", NULL};
        gw_req_fail_http(req, 405, PX_UNKNOWN, h, "HTTP method %.16s not allowed here; use GET",
                         method);
        return true;
    }
    unsigned char hash[16];
    crypto_generichash(hash, sizeof hash, f->data, f->size, NULL, 0);
    char etag[2 * sizeof hash + 3];
    etag[0] = '"';
    sodium_bin2hex(etag + 1, sizeof etag - 2, hash, sizeof hash);
    strcat(etag, "\"");
    const char *h[] = {"ETag",
                       etag,
                       "Cache-Control",
                       "no-cache",
                       "Content-Security-Policy",
                       "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
                       "X-Content-Type-Options",
                       "nosniff",
                       "X-Frame-Options",
                       "DENY",
                       "Referrer-Policy",
                       "no-referrer",
                       NULL};
    const char *inm = gw_req_header(req, "If-None-Match");
    if (inm && strstr(inm, etag)) {
        gw_req_respond(req, 304, NULL, "", 0, h);
        return true;
    }
    gw_req_respond(req, 200, s_type(path), f->data, f->size, h);
    return true;
}
