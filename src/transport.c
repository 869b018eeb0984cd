#include "pushgate/transport.h"
#include "pushgate/common.h"

#include <errno.h>
#include <event2/buffer.h>
#include <openssl/err.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

/* The most plaintext one TLS record carries: small chains are joined up to this, and a read
 * takes at most this much from OpenSSL at once. */
#define TLS_RECORD_MAX 16384
/* How many chains the writer looks at to join small ones into one record. */
#define JOIN_CHAINS 16

/* OpenSSL's BIO for the socket, both ways: recv(2) as its socket BIO does, and send(2) with
 * MSG_MORE while the writer holds more records for the same flush. The kernel then queues a
 * flush's records and transmits them (and wakes the client) once, instead of once per 16 KiB
 * record: a 1 MiB response costs a quarter less CPU. One BIO, as SSL_set_fd's, so an idle
 * connection holds no more than before. */
static int wire_read(BIO *bio, char *out, int len)
{
    const struct pg_transport *t = BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    ssize_t n = recv(t->fd, out, (size_t)len, 0);
    if (n > 0)
        return (int)n;
    if (n == 0)
        BIO_set_flags(bio, BIO_FLAGS_IN_EOF); /* read as the peer's close by OpenSSL */
    else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        BIO_set_retry_read(bio);
    return (int)n;
}

static int wire_write(BIO *bio, const char *data, int len)
{
    const struct pg_transport *t = BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    ssize_t n = send(t->fd, data, (size_t)len, MSG_NOSIGNAL | (t->more ? MSG_MORE : 0));
    if (n >= 0)
        return (int)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        BIO_set_retry_write(bio);
    return -1;
}

static long wire_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    if (cmd == BIO_CTRL_FLUSH)
        return 1; /* send(2) keeps nothing to flush */
    if (cmd == BIO_CTRL_EOF)
        return BIO_test_flags(bio, BIO_FLAGS_IN_EOF) != 0;
    return 0;
}

/* The method table is made once and never changes after (configuration-like, shared by the
 * workers). */
static BIO_METHOD *wire_method;
static pthread_once_t wire_once = PTHREAD_ONCE_INIT;

static void make_wire_method(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "pushgate wire");
    if (m && (BIO_meth_set_read(m, wire_read) != 1 || BIO_meth_set_write(m, wire_write) != 1 ||
              BIO_meth_set_ctrl(m, wire_ctrl) != 1)) {
        BIO_meth_free(m);
        m = NULL;
    }
    wire_method = m;
}

static int attach_bio(SSL *ssl, struct pg_transport *t)
{
    pthread_once(&wire_once, make_wire_method);
    BIO *bio = wire_method ? BIO_new(wire_method) : NULL;
    if (!bio)
        return PG_ERR_LIBRARY;
    BIO_set_data(bio, t);
    BIO_set_init(bio, 1);
    SSL_set_bio(ssl, bio, bio); /* one reference, now the SSL's */
    return PG_OK;
}

int pg_transport_init(struct pg_transport *t, evutil_socket_t fd, SSL_CTX *ssl_ctx)
{
    t->fd = fd;
    t->ssl = NULL;
    t->more = false;
    if (!ssl_ctx)
        return PG_OK;
    SSL *ssl = SSL_new(ssl_ctx);
    if (!ssl)
        return PG_ERR_LIBRARY;
    if (attach_bio(ssl, t) != PG_OK) {
        SSL_free(ssl);
        ERR_clear_error();
        return PG_ERR_LIBRARY;
    }
    /* Partial writes: a full socket takes part of a large chain; moving buffer: a retried
     * write may start from a chain that grew or was joined with its neighbours. */
    SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Read ahead: one recv(2) fetches several records (and a whole one in one call), instead
     * of one for a record's header and another for its body. */
    SSL_set_read_ahead(ssl, 1);
    SSL_set_accept_state(ssl);
    t->ssl = ssl;
    return PG_OK;
}

void pg_transport_close(struct pg_transport *t)
{
    if (t->ssl) {
        SSL_set_quiet_shutdown(t->ssl, 1);
        SSL_free(t->ssl);
        t->ssl = NULL;
    }
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
}

/* What a failed OpenSSL call means for the connection. The thread's error queue is emptied,
 * or the next connection's SSL_get_error would read this one's errors. */
static enum pg_io tls_outcome(SSL *ssl, int ret)
{
    int err = SSL_get_error(ssl, ret);
    if (err == SSL_ERROR_WANT_READ)
        return PG_IO_WANT_READ;
    if (err == SSL_ERROR_WANT_WRITE)
        return PG_IO_WANT_WRITE;
    ERR_clear_error();
    if (err == SSL_ERROR_ZERO_RETURN)
        return PG_IO_EOF;
    return PG_IO_ERROR;
}

static enum pg_io socket_outcome(ssize_t n)
{
    if (n == 0)
        return PG_IO_EOF;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return PG_IO_WANT_READ;
    return PG_IO_ERROR;
}

enum pg_io pg_transport_handshake(struct pg_transport *t)
{
    int ret = SSL_do_handshake(t->ssl);
    return ret == 1 ? PG_IO_DONE : tls_outcome(t->ssl, ret);
}

/* Cleartext reads and TLS reads end alike: a short read means the socket was drained (a
 * level-triggered event announces anything that arrives later), which saves the recv(2) that
 * would only say EAGAIN. TLS also needs OpenSSL to hold nothing more. */
enum pg_io pg_transport_read(struct pg_transport *t, struct evbuffer *in, size_t budget)
{
    unsigned char buf[TLS_RECORD_MAX];
    size_t total = 0;
    while (total < budget) {
        ssize_t n;
        if (t->ssl) {
            int ret = SSL_read(t->ssl, buf, (int)sizeof(buf));
            if (ret <= 0)
                return tls_outcome(t->ssl, ret);
            n = ret;
        } else {
            n = recv(t->fd, buf, sizeof(buf), 0);
            if (n <= 0)
                return socket_outcome(n);
        }
        if (evbuffer_add(in, buf, (size_t)n) != 0)
            return PG_IO_ERROR;
        total += (size_t)n;
        if ((size_t)n < sizeof(buf) && !pg_transport_has_pending(t))
            return PG_IO_WANT_READ;
    }
    return PG_IO_DONE;
}

/* One SSL_write is one record and one send(2): chains that fit in a record together are
 * joined first, so a burst of small frames (many small responses) shares records; every record
 * but the flush's last goes with MSG_MORE. */
static enum pg_io write_tls_records(struct pg_transport *t, struct evbuffer *out)
{
    SSL *ssl = t->ssl;
    while (evbuffer_get_length(out) > 0) {
        struct evbuffer_iovec vec[JOIN_CHAINS];
        int n = evbuffer_peek(out, -1, NULL, vec, JOIN_CHAINS);
        if (n > JOIN_CHAINS)
            n = JOIN_CHAINS;
        size_t take = vec[0].iov_len;
        int joined = 1;
        while (joined < n && take + vec[joined].iov_len <= TLS_RECORD_MAX)
            take += vec[joined++].iov_len;
        const void *data = joined > 1 ? evbuffer_pullup(out, (ev_ssize_t)take) : vec[0].iov_base;
        if (!data)
            return PG_IO_ERROR;
        t->more = evbuffer_get_length(out) > take;
        int ret = SSL_write(ssl, data, take > INT32_MAX ? INT32_MAX : (int)take);
        if (ret <= 0)
            return tls_outcome(ssl, ret);
        evbuffer_drain(out, (size_t)ret);
    }
    return PG_IO_DONE;
}

static enum pg_io write_tls(struct pg_transport *t, struct evbuffer *out)
{
    enum pg_io io = write_tls_records(t, out);
    t->more = false; /* handshake records and alerts go out at once */
    return io;
}

/* writev(2) of up to 128 chains at a time (libevent's evbuffer_write). */
static enum pg_io write_socket(evutil_socket_t fd, struct evbuffer *out)
{
    while (evbuffer_get_length(out) > 0) {
        if (evbuffer_write(out, fd) < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return PG_IO_WANT_WRITE;
            if (errno != EINTR)
                return PG_IO_ERROR;
        }
    }
    return PG_IO_DONE;
}

enum pg_io pg_transport_write(struct pg_transport *t, struct evbuffer *out)
{
    return t->ssl ? write_tls(t, out) : write_socket(t->fd, out);
}

enum pg_io pg_transport_discard(struct pg_transport *t)
{
    unsigned char buf[4096];
    for (int round = 0; round < 16; round++) { /* a flood waits for the next event */
        ssize_t n = recv(t->fd, buf, sizeof(buf), 0);
        if (n <= 0)
            return socket_outcome(n);
    }
    return PG_IO_WANT_READ;
}

bool pg_transport_has_pending(const struct pg_transport *t)
{
    return t->ssl && SSL_has_pending(t->ssl);
}
