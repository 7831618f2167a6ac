/*
 * clock.c - the two clocks phuxanh uses, in microseconds.
 *
 * Deadlines and timeouts are measured on CLOCK_MONOTONIC so that an NTP step
 * or an operator changing the date never makes a call expire early or hang;
 * the wall clock is only for what people read (log timestamps, applied_at).
 * Microseconds in an int64_t cover ~292,000 years, so nothing here overflows.
 */
#include "phuxanh/clock.h"

#include <errno.h>
#include <time.h>

#define S_US_PER_S 1000000LL
#define S_NS_PER_US 1000LL

static int64_t s_read(clockid_t id)
{
    struct timespec ts;
    /* clock_gettime cannot fail for these two clocks on Linux; a failure would mean a broken
     * libc, and zero is as good an answer as any then. */
    if (clock_gettime(id, &ts) != 0) {
        return 0;
    }
    return (int64_t)ts.tv_sec * S_US_PER_S + (int64_t)ts.tv_nsec / S_NS_PER_US;
}

int64_t px_clock_us(void)
{
    return s_read(CLOCK_MONOTONIC);
}

int64_t px_wall_us(void)
{
    return s_read(CLOCK_REALTIME);
}

void px_sleep_us(int64_t us)
{
    if (us <= 0) {
        return;
    }
    /* Sleep until an absolute monotonic time rather than for a relative interval: restarting a
     * relative sleep after EINTR would drift by however long the signal handler ran. */
    struct timespec until;
    if (clock_gettime(CLOCK_MONOTONIC, &until) != 0) {
        return;
    }
    int64_t ns = (int64_t)until.tv_nsec + (us % S_US_PER_S) * S_NS_PER_US;
    until.tv_sec += (time_t)(us / S_US_PER_S) + (time_t)(ns / (S_US_PER_S * S_NS_PER_US));
    until.tv_nsec = (long)(ns % (S_US_PER_S * S_NS_PER_US));
    int rc;
    do {
        rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL);
    } while (rc == EINTR);
}
