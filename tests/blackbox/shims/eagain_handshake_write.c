/* LD_PRELOAD shim for test_tls_want_write.py: the first EAGAIN_HANDSHAKE_WRITES write() calls
 * on a socket that start a TLS handshake record (content type 22, version 3.x) fail with
 * EAGAIN, as when the peer's receive window is closed, so that SSL_read driving the server's
 * handshake returns SSL_ERROR_WANT_WRITE. Each refusal is told on stderr. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

ssize_t write(int fd, const void *buf, size_t len)
{
    static ssize_t (*real_write)(int, const void *, size_t);
    static int left = -1;
    if (!real_write)
        real_write = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    if (left < 0) {
        const char *n = getenv("EAGAIN_HANDSHAKE_WRITES");
        left = n ? atoi(n) : 0;
    }
    const unsigned char *b = buf;
    struct stat st;
    if (left > 0 && len >= 5 && b[0] == 22 && b[1] == 3 && fstat(fd, &st) == 0 &&
        S_ISSOCK(st.st_mode)) {
        left--;
        static const char said[] = "shim: EAGAIN for a TLS handshake record write\n";
        real_write(2, said, sizeof said - 1);
        errno = EAGAIN;
        return -1;
    }
    return real_write(fd, buf, len);
}
