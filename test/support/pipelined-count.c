// SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0)
/*
 * The kernel's pipelining rule (bpf/pipelining.h) in user space, for
 * test/build/pipelining-rules.test.ts: reads records (a little-endian u16
 * length, then that many bytes) from stdin and prints, one per line, how
 * many requests the kernel counts after the first in each.
 */
#include <linux/types.h>
#include <stdio.h>
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif
#include "pipelining.h"

enum { PAYLOAD_MAX = 256 };

int main(void)
{
	unsigned char len[2], buf[PAYLOAD_MAX];
	while (fread(len, 1, 2, stdin) == 2) {
		unsigned n = len[0] | (len[1] << 8);
		if (n > PAYLOAD_MAX || fread(buf, 1, n, stdin) != n)
			return 2;
		printf("%u\n", gb_count_pipelined(buf, n, PAYLOAD_MAX));
	}
	return 0;
}
