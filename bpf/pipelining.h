/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * pipelining.h: how many HTTP/1.1 requests follow the first one in a read's
 * head (pipelining). The server's kernel derives ids for each of them
 * (pipeline_derive) and the client's agent splits the request message it
 * wrote by the same rule (src/protocols/http1.ts pipelinedRequestStarts), so
 * that both hosts number the requests alike. Plain C with no BPF helper:
 * test/build/pipelining-rules.test.ts compiles it for user space and runs it
 * beside the agent's rule on the same fuzzed heads.
 *
 * The rule: a request's head ends at the first blank line (CR LF CR LF); if
 * a method follows it (GET, PO[ST|ST], PU[T], PA[TCH], HE[AD], DE[LETE],
 * OP[TIONS], by its first bytes), that is the next request, whose head ends
 * at the next blank line; the first blank line followed by anything else
 * ends the count. Bodies are not skipped (the kernel does not read
 * Content-Length): a request pipelined behind one with a body is not
 * counted, and the two are one span on each host.
 */
#ifndef GEARBOX_PIPELINING_H
#define GEARBOX_PIPELINING_H

/* Reads p[i + 7] at most; `n` is the bytes of p, `max` the bound of the scan
 * (GB_PAYLOAD_MAX: what the kernel copies of a head). */
static __always_inline __u8 gb_count_pipelined(const __u8 *p, __u64 n, __u32 max)
{
	__u8 more = 0;
	for (__u32 i = 0; i < max - 8; i++) {
		if (i + 8 > n)
			break;
		if (p[i] != '\r' || p[i + 1] != '\n' || p[i + 2] != '\r' || p[i + 3] != '\n')
			continue;
		__u8 a = p[i + 4], b = p[i + 5], c = p[i + 6];
		if (!((a == 'G' && b == 'E' && c == 'T') || (a == 'P' && (b == 'O' || b == 'U' || b == 'A')) ||
		      (a == 'H' && b == 'E') || (a == 'D' && b == 'E') || (a == 'O' && b == 'P')))
			break;
		more++;
	}
	return more;
}

#endif /* GEARBOX_PIPELINING_H */
