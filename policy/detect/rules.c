/*
 * rules.c - the built-in secret rules.  Ids are stable: configurations,
 * baselines and SARIF reports name them.  The shapes are the providers'
 * public token formats (gitleaks and TruffleHog document the same ones);
 * every regex is bounded, so a match fits the stream window.
 *
 * A rule's keywords are lowercase literals that occur inside every match:
 * the regex runs on a window only when one of them is there.  The finding
 * is the group named "secret" when the regex has one (the value after
 * "password="), else the whole match.
 */
#include "policy/detect/detect_internal.h"

/* Characters that may follow a token without being part of it. */
#define END_B64URL	"(?![A-Za-z0-9_-])"

static const struct kw_builtin_rule builtin[] = {
	{
		.id = "anthropic-api-key",
		.regex = "sk-ant-api03-[A-Za-z0-9_-]{20,200}",
		.keywords = "sk-ant-api03-",
		.description = "Anthropic API key",
	},
	{
		.id = "anthropic-admin-key",
		.regex = "sk-ant-admin01-[A-Za-z0-9_-]{20,200}",
		.keywords = "sk-ant-admin01-",
		.description = "Anthropic Admin API key",
	},
	{
		.id = "anthropic-oauth-token",
		.regex = "sk-ant-o(?:at|rt)01-[A-Za-z0-9_-]{20,200}",
		.keywords = "sk-ant-oat01- sk-ant-ort01-",
		.description = "Anthropic OAuth access or refresh token (Claude Code login)",
	},
	{
		/* Legacy, project, service-account and admin keys all carry
		 * "T3BlbkFJ" ("OpenAI" in base64) in the middle. */
		.id = "openai-api-key",
		.regex = "\\bsk-(?:(?:proj|svcacct|admin)-)?[A-Za-z0-9_-]{16,160}T3BlbkFJ"
		    "[A-Za-z0-9_-]{16,160}" END_B64URL,
		.keywords = "t3blbkfj",
		.description = "OpenAI API key",
	},
	{
		.id = "aws-access-key-id",
		.regex = "\\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}\\b",
		.keywords = "akia asia abia acca a3t",
		.description = "AWS access key id",
	},
	{
		/* 40 base64 characters carry no shape of their own: only next
		 * to their usual name. */
		.id = "aws-secret-access-key",
		.regex = "(?i)aws[_.-]?(?:secret[_.-]?(?:access[_.-]?)?key|secret)[\"']?\\s{0,5}"
		    "(?::=|=>|[:=])\\s{0,5}[\"']?(?<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])",
		.keywords = "aws",
		.description = "AWS secret access key (next to its name)",
		.entropy = 3.0,
	},
	{
		.id = "github-token",
		.regex = "\\b(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{50,244})\\b",
		.keywords = "ghp_ gho_ ghu_ ghs_ ghr_ github_pat_",
		.description = "GitHub token (personal, OAuth, app, refresh, fine-grained)",
	},
	{
		.id = "gitlab-token",
		.regex = "\\bglpat-[A-Za-z0-9_-]{20,128}" END_B64URL,
		.keywords = "glpat-",
		.description = "GitLab personal access token",
	},
	{
		.id = "slack-token",
		.regex = "\\bxox[abprs]-[A-Za-z0-9-]{10,250}" END_B64URL,
		.keywords = "xoxa- xoxb- xoxp- xoxr- xoxs-",
		.description = "Slack token",
	},
	{
		.id = "stripe-key",
		.regex = "\\b[rs]k_live_[A-Za-z0-9]{20,247}\\b",
		.keywords = "sk_live_ rk_live_",
		.description = "Stripe live secret or restricted key",
	},
	{
		.id = "google-api-key",
		.regex = "\\bAIza[A-Za-z0-9_-]{35}" END_B64URL,
		.keywords = "aiza",
		.description = "Google API key",
	},
	{
		/* PKCS#1 RSA, SEC 1 EC, DSA, PKCS#8 (plain or encrypted), OpenSSH. */
		.id = "private-key",
		.regex = "-----BEGIN (?<kind>(?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY)-----"
		    "[\\s\\S]{16,12000}?-----END \\k<kind>-----",
		.keywords = "private key-----",
		.description = "Private key (PEM: RSA, EC, DSA, PKCS#8, OpenSSH), whole block",
	},
	{
		/* Header and payload are base64url JSON objects: "eyJ" is '{"'. */
		.id = "jwt",
		.regex = "\\beyJ[A-Za-z0-9_-]{8,4096}\\.eyJ[A-Za-z0-9_-]{8,8192}\\.[A-Za-z0-9_-]{0,4096}"
		    END_B64URL,
		.keywords = "eyj",
		.description = "JSON Web Token",
	},
	{
		/*
		 * The credentials "user:password" (not a placeholder password):
		 * starting before the password, they win over the email filter
		 * that "password@host" also matches.
		 */
		.id = "database-url",
		.regex = "(?i)\\b(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\\+srv)?|rediss?|amqps?|"
		    "mssql|sqlserver)://(?<secret>[^\\s:/@\"']{0,128}:"
		    "(?!(?:password|passwd|pass|secret|changeme|x+|\\*+)@)"
		    "[^\\s:/@\"'$<*{][^\\s/@\"']{0,255})@[A-Za-z0-9_.-]{1,253}",
		.keywords = "postgres mysql mariadb mongodb redis amqp mssql sqlserver",
		.description = "Database URL with a password (its user:password)",
	},
	{
		/* Last: at one place a specific rule wins over this one. */
		.id = "generic-secret",
		.regex = "(?i)(?:passw(?:or)?d|pwd|secret|token|api[_-]?key|access[_-]?key|"
		    "auth[_-]?key|credential)[\\w.-]{0,20}[\"']?\\s{0,5}(?::=|=>|[:=])\\s{0,5}[\"']?"
		    "(?<secret>[^\\s\"'`;,<>\\[\\]()$][^\\s\"'`;,<>]{7,199})",
		.keywords = "passw pwd secret token api_key api-key apikey access_key access-key "
		    "accesskey auth_key auth-key authkey credential",
		.description = "A password, secret, token or key assigned a high-entropy value "
		    "(the value)",
		.entropy = 3.5,
	},
};

const struct kw_builtin_rule *
kw_detect_builtin_rules(size_t *ret_n)
{
	*ret_n = KW_ELEMENTSOF(builtin);
	return builtin;
}
