/* detect.c - what the machine offers (placeholder until the kernel layer lands). */
#include <stdio.h>
#include <string.h>

#include "sandbox/sandbox.h"

void
kw_sandbox_detect(struct kw_sandbox_caps *caps, const char *without)
{
	(void)without;
	memset(caps, 0, sizeof(*caps));
	snprintf(caps->why_not, sizeof(caps->why_not), "not probed yet");
}
