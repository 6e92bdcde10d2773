/* wsload's command line. */
#ifndef WSLOAD_OPTIONS_H
#define WSLOAD_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct options {
    const char *host;
    int port;
    const char *path;
    unsigned connections;
    size_t size;
    bool text;
    bool json_payload; /* --payload json: JSON-like text */
    unsigned depth;
    double duration; /* seconds */
    double warmup;
    bool raw;
    double rate;     /* total messages/s; 0: closed loop */
    unsigned idle;   /* --idle N: connections to hold idle; 0: off */
    bool idle_echo;  /* --idle-echo: one message each way on every connection before measuring */
    bool deflate;    /* offer permessage-deflate */
    bool deflate_optional; /* and carry on uncompressed when the server declines */
    int deflate_level;
    double hold;
    pid_t server_pid; /* 0: unknown */
    pid_t proxy_pid;  /* --server-pid A,B: B's CPU counts too (a TLS proxy and its backend) */
    bool json;
    bool tls;          /* wss:// */
    const char *tls_suites; /* TLS 1.3 ciphersuites offered; NULL: OpenSSL's default */
    bool churn;        /* each connection closes once upgraded and opens again */
};

enum { OPTIONS_RUN, OPTIONS_EXIT_OK, OPTIONS_EXIT_USAGE };

int options_parse(int argc, char **argv, struct options *opt);

#endif
