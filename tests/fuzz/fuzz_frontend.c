/* libFuzzer target: the HTTP/2 frontend byte stream. Each input is what a client sends after
 * the connection preface, fed into a real connection (pg_conn + the h2 session + upstream
 * exchanges) by the shared harness. */
#include "frontend_harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    pg_fuzz_feed_connection(preface, sizeof(preface) - 1, data, size);
    return 0;
}
