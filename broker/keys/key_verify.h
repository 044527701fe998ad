/*
 * key_verify.h - is a stored key plausible, and (with api.verifyUrl) does
 * the provider still accept it?  The format check is immediate; the live
 * check is a network call, made on the dispatcher's worker thread
 * (kw_call_defer), never on the event loop.
 */
#ifndef KW_KEY_VERIFY_H
#define KW_KEY_VERIFY_H

#include <jansson.h>
#include <stdbool.h>

#include "common/config.h"
#include "common/macros.h"

struct kw_key_check;

/*
 * Check value's format for its provider (Anthropic: sk-ant-...) and note
 * whether a live check is wanted.  *ret_check holds a wiped-on-free copy of
 * value and the settings the live check needs (it does not use cfg later).
 * 0 or KW_ERR_NOMEM.  Free with kw_key_check_free.
 */
int kw_key_check_new(const struct kw_config *cfg, const char *name, const char *value,
    struct kw_key_check **ret_check) KW_WUR KW_NONNULL(1, 2, 3, 4);

/* Whether api.verifyUrl should be asked about this key. */
bool kw_key_check_wants_live(const struct kw_key_check *k) KW_NONNULL(1);

/* Ask api.verifyUrl with the key in an x-api-key header (15 s at most).
   Blocking: a worker's work function.  A failed check is a result. */
void kw_key_check_live(void *k);

/* {"format", "ok", "live" (null|bool), "detail"} into *ret_result.  0 or KW_ERR_NOMEM. */
int kw_key_check_result(const struct kw_key_check *k, json_t **ret_result) KW_WUR KW_NONNULL(1, 2);

/* Wipe and free.  Accepts NULL. */
void kw_key_check_free(void *k);

#endif
