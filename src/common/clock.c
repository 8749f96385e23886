// SPDX-License-Identifier: Apache-2.0
/* The wall clock of token times: see clock.h for why it is not time(NULL). */
#include "common/clock.h"

#include <time.h>

int64_t gh_clock_wall_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

int64_t gh_clock_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
