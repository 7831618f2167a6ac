/* testd_proc.c - see testd_proc.h. */
#include "testd_proc.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "px_test.h"

int proc_start(testd_t *t, const char *binary, const char *const *args)
{
    char bin[1024];
    char *argv[40];
    int n = 0;
    snprintf(bin, sizeof bin, "%s/%s", px_test_bin_dir(), binary);
    argv[n++] = bin;
    for (size_t i = 0; args && args[i] && n < 38; i++) {
        argv[n++] = (char *)args[i];
    }
    argv[n] = NULL;
    int out = -1;
    t->pid = px_test_spawn(argv, &out);
    if (t->pid <= 0) {
        return -1;
    }
    char line[200];
    int rc = px_test_read_line(out, line, sizeof line, 30000);
    close(out);
    if (rc != 0 || strncmp(line, "READY ", 6) != 0) {
        px_test_stop(t->pid, SIGKILL, 1000);
        t->pid = 0;
        return -1;
    }
    snprintf(t->endpoint, sizeof t->endpoint, "%s", line + 6);
    return 0;
}

int testd_start(testd_t *t, const char *listen, const char *const *extra)
{
    char listen_arg[160];
    const char *args[32];
    int n = 0;
    snprintf(listen_arg, sizeof listen_arg, "--listen=%s", listen ? listen : "tcp://127.0.0.1:0");
    args[n++] = listen_arg;
    args[n++] = "--log-level=warn";
    for (size_t i = 0; extra && extra[i] && n < 30; i++) {
        args[n++] = extra[i];
    }
    args[n] = NULL;
    return proc_start(t, "tests/support/px-testd", args);
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
