/* testd_proc.h - start and stop px-testd processes for the RPC tests. */
#ifndef PX_TESTD_PROC_H
#define PX_TESTD_PROC_H

#include <stddef.h>
#include <sys/types.h>

typedef struct {
    pid_t pid;
    char endpoint[256];
} testd_t;

/* Starts px-testd with the given extra flags (NULL-terminated, may be NULL) and waits for its
 * READY line. listen may be NULL (a free port). 0 on success. */
int testd_start(testd_t *t, const char *listen, const char *const *extra);
/* Starts any of our programs that prints "READY <endpoint>" (px-testd, px-roster, ...):
 * binary is relative to the build tree ("services/roster/px-roster"), args NULL-terminated
 * (the listen flag included). 0 on success. */
int proc_start(testd_t *t, const char *binary, const char *const *args);
/* Sends sig and waits for the exit (SIGKILL after timeout); returns the exit status or -1. */
int testd_stop(testd_t *t, int sig);

#endif
