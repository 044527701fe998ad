/*
 * validate.c - the checks that turn a regex match into a finding: Luhn for
 * card numbers, the SSA's rules for SSNs, Shannon entropy for generic
 * secrets.  Separators (spaces, dashes) are skipped.
 */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>

#include "policy/detect/detect_internal.h"

bool
kw_luhn_valid(const char *s, size_t len)
{
	unsigned sum = 0, n = 0;

	for (size_t i = len; i-- > 0;) {
		unsigned c = (unsigned char)s[i];
		if (c == ' ' || c == '-')
			continue;
		if (c < '0' || c > '9')
			return false;
		unsigned v = c - '0';
		if (n++ % 2 == 1 && (v *= 2) > 9)
			v -= 9;
		sum += v;
	}
	return n >= 12 && n <= 19 && sum % 10 == 0;
}

/* AAA-GG-SSSS: no area 000, 666 or 9xx; no group 00; no serial 0000. */
bool
kw_ssn_valid(const char *s, size_t len)
{
	char d[9];
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == ' ' || c == '-')
			continue;
		if (c < '0' || c > '9' || n == sizeof(d))
			return false;
		d[n++] = c;
	}
	if (n != 9)
		return false;
	if ((d[0] == '0' && d[1] == '0' && d[2] == '0') ||
	    (d[0] == '6' && d[1] == '6' && d[2] == '6') || d[0] == '9')
		return false;
	if (d[3] == '0' && d[4] == '0')
		return false;
	return !(d[5] == '0' && d[6] == '0' && d[7] == '0' && d[8] == '0');
}

/* Bits per byte of s (0 for an empty string). */
double
kw_shannon_entropy(const char *s, size_t len)
{
	size_t count[256] = { 0 };
	double h = 0;

	if (len == 0)
		return 0;
	for (size_t i = 0; i < len; i++)
		count[(unsigned char)s[i]]++;
	for (size_t c = 0; c < 256; c++) {
		if (!count[c])
			continue;
		double p = (double)count[c] / (double)len;
		h -= p * log2(p);
	}
	return h;
}
