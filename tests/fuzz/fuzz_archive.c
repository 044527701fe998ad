/*
 * fuzz_archive.c - libFuzzer target for the audit archive checker
 * (cli/archive_verify.c): an archive is a file anyone may hand an auditor,
 * so any bytes, gzip'd or not, must give a verdict and nothing worse.
 *
 * The input is put in a memfd and checked through /proc/self/fd, the same
 * path through zlib a file on disk takes.
 */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cli/archive_verify.h"
#include "fuzz.h"

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
		(void)kw_archive_verify(path, &rep);
	}
	close(fd);
	return 0;
}
