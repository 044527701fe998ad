/*
 * plan_json.c - the plan as JSON, for `run --check`, doctor and the audit
 * record (the shape is in sandbox.h).  Built with jansson; a failed
 * allocation anywhere gives NULL, never a partial object.
 */
#include "sandbox/plan_internal.h"

static json_t *
strv_json(char *const *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++)
		if (json_array_append_new(a, json_string(v[i])) != 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

static json_t *
grants_json(const struct kw_sandbox_plan *p)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < p->n_grants; i++) {
		unsigned r = p->grants[i].rights;
		char rights[5] = "----";

		rights[0] = r & KW_SB_READ ? 'r' : '-';
		rights[1] = r & KW_SB_WRITE ? 'w' : '-';
		rights[2] = r & KW_SB_EXEC ? 'x' : '-';
		rights[3] = r & KW_SB_DEV ? 'd' : '-';
		if (json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "path",
		    p->grants[i].path, "rights", rights, "why", p->grants[i].why)) != 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static json_t *
ports_json(const struct kw_sandbox_plan *p)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < p->n_forwards; i++)
		if (json_array_append_new(a, json_integer(p->forward_ports[i])) != 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

json_t *
kw_sandbox_plan_json(const struct kw_sandbox_plan *p)
{
	static const char *const net[] = {
		[KW_SB_NET_OPEN] = "open", [KW_SB_NET_FILTERED] = "filtered",
		[KW_SB_NET_NONE] = "none",
	};
	static const char *const exec[] = {
		[KW_SB_EXEC_ANY] = "any", [KW_SB_EXEC_LIST] = "list", [KW_SB_EXEC_ONCE] = "once",
	};

	/* "o" steals each reference, and json_pack frees them all when it fails. */
	return json_pack("{s:i, s:b, s:b, s:b, s:b, s:b, s:b, s:s, s:s, s:s, s:o, s:o, s:o, "
	    "s:o, s:o, s:o, s:o, s:i, s:s*}",
	    "landlock_abi", p->landlock_abi, "userns", p->userns, "mountns", p->mountns,
	    "netns", p->netns, "landlock_net", p->landlock_net, "scoped", p->scoped,
	    "seccomp", p->seccomp, "net", net[p->net], "exec", exec[p->exec],
	    "level", kw_sandbox_plan_level(p),
	    "grants", grants_json(p), "hides", strv_json(p->hides, p->n_hides),
	    "exec_paths", strv_json(p->exec_paths, p->n_exec_paths),
	    "allowed_hosts", strv_json(p->allowed_hosts, p->n_hosts),
	    "allowed_domains", strv_json(p->allowed_domains, p->n_domains),
	    "forward_ports", ports_json(p), "missing", strv_json(p->missing, p->n_missing),
	    "proxy_port", (int)p->proxy_port, "tmpdir", p->tmpdir);
}
