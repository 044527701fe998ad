/*
 * key_import.h - the last step of `keywarden key import`, shared with
 * `keywarden doctor --fix`: a key found outside keywarden goes to the
 * broker's key.set, and nowhere else.
 */
#ifndef KW_KEY_IMPORT_H
#define KW_KEY_IMPORT_H

#include <jansson.h>

#include "cli/cli.h"
#include "common/macros.h"

/*
 * Store value as key name (key.set over a connection of its own).  value
 * is the caller's malloc'd copy, wiped and freed here whatever happens.
 * On success *ret_result holds key.set's result ({"name", "version"}); on
 * failure the reason has been printed as "keywarden: what: message".
 * Returns the exit status.
 */
int kw_cli_key_store(struct kw_cli *cli, const char *what, const char *name, char *value,
    json_t **ret_result) KW_NONNULL(1, 2, 3, 4, 5);

#endif
