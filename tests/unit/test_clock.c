// SPDX-License-Identifier: Apache-2.0
/*
 * The clock of token times never lags the precise wall clock: a token whose exp (plus leeway) is
 * the current second is expired from that second's first moment. time(NULL) failed this (glibc
 * reads the coarse clock, a tick behind; gateway-proofs.test.mjs saw "expired by exactly the
 * leeway" pass).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "common/clock.h"

static void test_wall_seconds_never_behind_the_precise_clock(void **state)
{
    long behind = 0, rounds = 0;
    struct timespec start, ts;
    (void)state;
    clock_gettime(CLOCK_MONOTONIC, &start);
    /* several second boundaries' worth of reads: the lag, when there is one, is at each boundary */
    do {
        for (int i = 0; i < 100000; i++) {
            clock_gettime(CLOCK_REALTIME, &ts);
            if (gh_clock_wall_seconds() < (int64_t)ts.tv_sec)
                behind++;
        }
        rounds++;
        clock_gettime(CLOCK_MONOTONIC, &ts);
    } while (ts.tv_sec - start.tv_sec < 3);
    if (behind != 0)
        fail_msg("the token clock was behind the wall clock %ld times in %ld reads", behind,
                 rounds * 100000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wall_seconds_never_behind_the_precise_clock),
    };
    return cmocka_run_group_tests_name("clock", tests, NULL, NULL);
}
