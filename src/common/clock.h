// SPDX-License-Identifier: Apache-2.0
/*
 * The wall clock that token times (exp, nbf, iat) are judged by. One function, so the gateway,
 * `explain` and `token verify` agree to the second: glibc's time(NULL) reads the coarse clock,
 * which lags the precise one by up to a scheduler tick, and a token would then pass for those
 * milliseconds after the second at which it expires (IdPs and callers read the precise clock).
 */
#ifndef GH_COMMON_CLOCK_H
#define GH_COMMON_CLOCK_H

#include <stdint.h>

/* Seconds since the epoch from CLOCK_REALTIME (not its coarse twin). */
int64_t gh_clock_wall_seconds(void);

/* Milliseconds of CLOCK_MONOTONIC, for pauses and deadlines that must not follow the wall clock. */
int64_t gh_clock_monotonic_ms(void);

#endif
