/* clock.h - monotonic and wall clocks in microseconds. */
#ifndef PHUXANH_CLOCK_H
#define PHUXANH_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in microseconds: deadlines are on this scale. */
int64_t px_clock_us(void);
/* CLOCK_REALTIME in microseconds since the epoch. */
int64_t px_wall_us(void);
/* Sleeps for us microseconds (restarting on EINTR). */
void px_sleep_us(int64_t us);

#endif
