/* libFuzzer target: the HTTP/1.x frontend byte stream. Each input is what a client sends on a
 * cleartext connection (anything but the HTTP/2 preface is HTTP/1.x), fed into a real
 * connection (pg_conn + the h1 session + upstream exchanges) by the shared harness. */
#include "frontend_harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pg_fuzz_feed_connection("", 0, data, size);
    return 0;
}
