/*
 * wipe_alloc.h - make jansson wipe what it frees.
 *
 * Codes, tokens and seeds pass through jansson strings on their way in and
 * out of the wire format; jansson frees those copies itself.  Programs that
 * handle such values (the broker, the CLI) install this allocator once at
 * start, so every freed JSON buffer is zeroed first.  Not for libraries or
 * the PAM module: the allocator is process-wide.
 */
#ifndef KW_WIPE_ALLOC_H
#define KW_WIPE_ALLOC_H

/* Install the wiping allocator; call before any JSON is made. */
void kw_json_wipe_on_free(void);

#endif
