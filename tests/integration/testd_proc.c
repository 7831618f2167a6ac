/* testd_proc.c - see testd_proc.h. */
#include "testd_proc.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "px_test.h"

int testd_start(testd_t *t, const char *listen, const char *const *extra)
{
    char bin[1024];
    char listen_arg[160];
    char *argv[32];
    int n = 0;
    snprintf(bin, sizeof bin, "%s/tests/support/px-testd", px_test_bin_dir());
    snprintf(listen_arg, sizeof listen_arg, "--listen=%s", listen ? listen : "tcp://127.0.0.1:0");
    argv[n++] = bin;
    argv[n++] = listen_arg;
    argv[n++] = "--log-level=warn";
    for (size_t i = 0; extra && extra[i] && n < 30; i++) {
        argv[n++] = (char *)extra[i];
    }
    argv[n] = NULL;
    int out = -1;
    t->pid = px_test_spawn(argv, &out);
    if (t->pid <= 0) {
        return -1;
    }
    char line[200];
    int rc = px_test_read_line(out, line, sizeof line, 10000);
    close(out);
    if (rc != 0 || strncmp(line, "READY ", 6) != 0) {
        px_test_stop(t->pid, SIGKILL, 1000);
        t->pid = 0;
        return -1;
    }
    snprintf(t->endpoint, sizeof t->endpoint, "%s", line + 6);
    return 0;
}

int testd_stop(testd_t *t, int sig)
{
    if (t->pid <= 0) {
        return -1;
    }
    int rc = px_test_stop(t->pid, sig, 10000);
    t->pid = 0;
    return rc;
}
