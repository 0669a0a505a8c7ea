/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the IPC decoder. The first byte chooses how many
 * descriptors "arrived" with the message; the rest is the message. A
 * decoded message is walked with every getter, as a daemon would.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>

#include "qd_ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static qd_ipc_msg m;
    char text[256];
    uint32_t v32;
    uint64_t v64;
    const uint8_t *p;
    size_t len, pos = 0;
    uint16_t tag;

    if (size < 1)
        return 0;
    if (qd_ipc_decode(&m, data + 1, size - 1, data[0] % (QD_IPC_MAX_FDS + 2)) != 0)
        return 0;
    for (uint16_t t = 0; t < 24; t++) {
        qd_ipc_get_u32(&m, t, &v32);
        qd_ipc_get_u64(&m, t, &v64);
        qd_ipc_get_str(&m, t, text, sizeof(text));
        qd_ipc_get_bytes(&m, t, &p, &len);
    }
    while (qd_ipc_next(&m, &pos, &tag, &p, &len))
        ;
    return 0;
}
