/*
 * features.h - the broker's features, plugged into the dispatcher.
 *
 * Each folder of broker/ other than core/, dispatch/ and store/ is one
 * feature: its requests (ops.c), its timers and observers.  A new feature
 * is a folder with a kw_FEATURE_register function, listed in features.c.
 */
#ifndef KW_FEATURES_H
#define KW_FEATURES_H

#include "broker/dispatch/dispatch.h"
#include "common/macros.h"

/* Register every feature with d (svc opened).  0, or the first error (logged). */
int kw_features_register(struct kw_dispatcher *d, struct kw_services *svc)
	KW_WUR KW_NONNULL(1, 2);

#endif
