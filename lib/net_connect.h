/*
 * net_connect.h - a TCP (or any stream) connect that waits no longer than
 * its deadline, for both programs: the socket is non-blocking from its
 * creation, connect() is started, and completion is awaited with poll()
 * until the deadline on the one clock (clock.h).
 *
 * The gateway's engines connect to backends inside libevent
 * (engine_conn.c) and wait there instead of in poll(); the two steps that do
 * not wait, net_connect_start() and net_connect_result(), are what such a
 * caller shares.
 */
#ifndef MG_NET_CONNECT_H
#define MG_NET_CONNECT_H

#include <sys/socket.h>

#define NET_CONNECT_TIMEOUT (-2)	/* the deadline passed before the peer answered */

/*
 * Connect a new SOCK_STREAM socket of sa's family (non-blocking and
 * close-on-exec, and left non-blocking) to sa before deadline (ms, the
 * mg_now_ms() clock). Returns 0 with *fd_out, -1 with errno (ECONNREFUSED,
 * ENETUNREACH, ...; no socket is left open), or NET_CONNECT_TIMEOUT (errno
 * ETIMEDOUT, no socket left open).
 */
int net_connect(const struct sockaddr *sa, socklen_t salen, long long deadline, int *fd_out);

/*
 * The first step: a new non-blocking, close-on-exec SOCK_STREAM socket and
 * connect(). Returns 0 when it connected at once, 1 when the connect is in
 * progress (wait for the socket to become writable, then call
 * net_connect_result()), both with *fd_out; -1 with errno and no socket.
 */
int net_connect_start(const struct sockaddr *sa, socklen_t salen, int *fd_out);

/*
 * The outcome of a connect in progress whose socket has become writable (or
 * reported an error): 0 when connected, otherwise the errno value that ended
 * it (never 0).
 */
int net_connect_result(int fd);

#endif
