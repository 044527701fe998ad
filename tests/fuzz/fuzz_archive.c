/*
 * fuzz_archive.c - libFuzzer target for the audit archive checker
 * (cli/archive_verify.c): an archive is a file anyone may hand an auditor,
 * so any bytes, gzip'd or not, must give a verdict and nothing worse.
 *
 * The input is put in a memfd and checked through /proc/self/fd, the same
 * path through zlib a file on disk takes.  The key is the one the seed
 * corpus is signed with (make_archive_seeds.py: the seed bytes 0..31), so
 * inputs derived from valid.jsonl.gz reach the manifest's signature check.
 */
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cli/archive_verify.h"
#include "fuzz.h"

static const uint8_t seed_pk[KW_AUDIT_PK_LEN] = {
	0x03, 0xa1, 0x07, 0xbf, 0xf3, 0xce, 0x10, 0xbe, 0x1d, 0x70, 0xdd, 0x18, 0xe7, 0x4b, 0xc0, 0x99,
	0x67, 0xe4, 0xd6, 0x30, 0x9b, 0xa5, 0x0d, 0x5f, 0x1d, 0xdc, 0x86, 0x64, 0x12, 0x55, 0x31, 0xb8,
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return sodium_init() < 0 ? -1 : 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kw_archive_report rep;
	char path[64];
	int fd = memfd_create("archive", MFD_CLOEXEC);

	if (fd < 0)
		return 0;
	if (size == 0 || write(fd, data, size) == (ssize_t)size) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		/* Intact means every record of the header's range, under a signature that holds. */
		if (kw_archive_verify(path, seed_pk, &rep) == 0)
			CHECK(rep.is_signed && rep.records == rep.last_seq - rep.first_seq + 1);
	}
	close(fd);
	return 0;
}
