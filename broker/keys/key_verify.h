/*
 * verify.h - is a stored key plausible, and (with api.verifyUrl) does the
 * provider still accept it?
 */
#ifndef KW_VERIFY_H
#define KW_VERIFY_H

#include <jansson.h>

#include "common/config.h"
#include "common/macros.h"

/*
 * Check value's format for its provider (Anthropic: sk-ant-...) and, when
 * api.verifyUrl is set, ask that endpoint with the key in an x-api-key
 * header.  *ret_result: {"format", "ok", "live" (null|bool), "detail"}.
 * 0, or KW_ERR_NOMEM.  A failed live check is a result, not an error.
 */
int kw_key_verify(const struct kw_config *cfg, const char *name, const char *value,
    json_t **ret_result) KW_WUR KW_NONNULL(1, 2, 3, 4);

#endif
