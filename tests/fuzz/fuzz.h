/*
 * fuzz.h - what the libFuzzer targets share: the entry points' prototypes
 * and CHECK, an invariant that aborts (libFuzzer keeps the input) instead
 * of returning.
 */
#ifndef KW_FUZZ_H
#define KW_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: invariant failed: %s\n",	\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

#endif
