/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	qd_time - clocks in milliseconds
 * SYNOPSIS
 *	qd_time_mono_ms(), qd_time_real_ms()
 */
#include "config.h"

/* system */
#include <time.h>

/* libshared */
#include "qd_time.h"

uint64_t qd_time_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t qd_time_real_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
