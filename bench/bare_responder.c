// The machine's ceiling for the tracker benchmark: a single-threaded epoll loop that
// answers every HTTP request it receives with the same fixed 200 reply, doing no other
// work (no parsing past the blank line that ends a request, no tracker). Run under the
// same wrk script as the trackers, its rate is what loopback TCP and the load generator
// allow any server on this machine; a tracker cannot beat it.
//
// Usage: bare_responder PORT REPLY_BODY_BYTES   (listens on 127.0.0.1 only)
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { MAX_FD = 4096, REQUEST_MAX = 4096 };

// Bytes of an unfinished request per connection, indexed by file descriptor.
static char pending[MAX_FD][REQUEST_MAX];
static size_t pending_len[MAX_FD];

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s PORT REPLY_BODY_BYTES\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    int body = atoi(argv[2]);
    if (port <= 0 || port > 65535 || body < 0 || body > 8192) {
        fprintf(stderr, "bad port or body size\n");
        return 2;
    }
    static char reply[9000];
    int head = snprintf(reply, sizeof reply,
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n",
                        body);
    memset(reply + head, 'x', (size_t)body);
    size_t reply_len = (size_t)head + (size_t)body;
    static char out[64 * 9000];

    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 1024) != 0) {
        perror("bind/listen");
        return 1;
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = listener};
    epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
    struct epoll_event events[256];
    for (;;) {
        int n = epoll_wait(ep, events, 256, -1);
        if (n < 0 && errno != EINTR) {
            perror("epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == listener) {
                int c;
                while ((c = accept4(listener, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    if (c >= MAX_FD) {
                        close(c);
                        continue;
                    }
                    pending_len[c] = 0;
                    struct epoll_event e = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
                }
                continue;
            }
            char *buf = pending[fd];
            size_t have = pending_len[fd];
            ssize_t got = recv(fd, buf + have, REQUEST_MAX - have, 0);
            if (got < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (got <= 0) {
                close(fd);
                continue;
            }
            have += (size_t)got;
            // Answer every complete request (up to the blank line), keep the rest.
            size_t start = 0, replies = 0;
            for (size_t k = 3; k < have; k++) {
                if (buf[k] == '\n' && buf[k - 1] == '\r' && buf[k - 2] == '\n' && buf[k - 3] == '\r') {
                    if (replies < 64)
                        memcpy(out + replies * reply_len, reply, reply_len);
                    replies++;
                    start = k + 1;
                }
            }
            if (replies > 64 || (start == 0 && have == REQUEST_MAX)) {
                close(fd); // more pipelined than this tool handles, or a request too large
                continue;
            }
            memmove(buf, buf + start, have - start);
            pending_len[fd] = have - start;
            if (replies > 0 && send(fd, out, replies * reply_len, 0) != (ssize_t)(replies * reply_len))
                close(fd); // a full send buffer: not something this benchmark produces
        }
    }
}
