/*
 * tlsprobe.h - the TLS part of the check: the handshake on a probe
 * connection, then the negotiated version, the certificate's expiry
 * against -w/-c, its chain and its name against --sni or -H.
 */
#ifndef MON_TLSPROBE_H
#define MON_TLSPROBE_H

#include <stdbool.h>

#include "probe.h"

/*
 * Handshake on c (after STARTTLS/STLS, or at once for -S). On failure adds
 * a finding and returns -1: of closed_state when the server hung up, else
 * of failure_state (after a pipelined STARTTLS a hang-up is a defence, so
 * the two differ there; on the secure path both are CRITICAL).
 */
int tlsprobe_handshake(struct mon_ctx *ctx, struct mon_conn *c, const char *what,
		       enum mon_state failure_state, enum mon_state closed_state);

/*
 * Judge the established TLS session and record cert_days in the report.
 * Returns true when the certificate is trusted and names the host, i.e.
 * when it is safe to send the real password over this connection.
 */
bool tlsprobe_evaluate(struct mon_ctx *ctx, struct mon_conn *c);

#endif
