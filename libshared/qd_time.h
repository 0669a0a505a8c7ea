/* SPDX-License-Identifier: MIT */
#ifndef QD_TIME_H
#define QD_TIME_H

#include <stdint.h>

/* qd_time_mono_ms returns CLOCK_MONOTONIC in milliseconds. */
uint64_t qd_time_mono_ms(void);

/* qd_time_real_ms returns CLOCK_REALTIME (Unix epoch) in milliseconds. */
uint64_t qd_time_real_ms(void);

#endif /* QD_TIME_H */
