"""Masking secrets (and, when asked, personal data) in text before it leaves the process.

The detector set follows the rule families of the maintained secret scanners (gitleaks'
default rules and detect-secrets' plugins): provider token shapes with their fixed
prefixes, private-key blocks, credentials in URLs and connection strings, signed URLs,
webhook URLs, authorization headers, command-line passwords and `NAME_API_KEY=`-style
assignments. Neither tool is a runtime dependency: both scan files line by line with every
rule, which costs milliseconds per value, and their entropy detectors would mask the hashes
and ids that must stay readable. The rules are kept here as data, tested on a corpus of
real formats (tests/redaction/).

Cost: like gitleaks, each rule has lower-case keywords and runs only on text that contains
one. One trie-shaped regex finds the keywords present, so ordinary text costs a single
scan; a rule's own regex is compiled the first time its keyword shows up, so building a
`Redactor` (every `instrument()`) compiles nothing.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

REDACTED = "[REDACTED]"


class Rule(NamedTuple):
    """One detector: `pattern` runs on text whose lower-cased form contains a keyword
    (no keywords: it always runs). `(?P<S>...)` marks the secret part (else the whole
    match); `check`, if given, must accept the match (a name that names a secret, a Luhn or IBAN checksum).
    A named tuple: some 160 are built at import, several times faster than dataclasses."""

    name: str
    keywords: tuple[str, ...]
    pattern: str
    check: Callable[[re.Match[str]], bool] | None = None


# A value after `=` or `:`: quoted (spaces allowed; also JSON-escaped quotes) or bare up
# to a delimiter.
_VALUE = (
    r"""(?!\\?["']?\[REDACTED\])(?:"(?P<S>[^"\r\n]{1,512})"|'(?P<S2>[^'\r\n]{1,512})'|"""
    r"""\\"(?P<S4>[^"\\\r\n]{1,512})\\"|(?P<S3>[^\s"'\\,;&}<>\]]{3,}))"""
)

# Identifier endings that name a secret: OPENAI_API_KEY, db_password, client-secret,
# GITHUB_TOKEN, SENTRY_DSN, AZURE_STORAGE_CONNECTION_STRING, ...  Token counts
# (`max_tokens`, `token_count`) do not end this way and stay readable.
_SECRET_NAME = (
    r"(?:api[_-]?key|apikey|(?:access|secret|private|account|master|encryption|signing|client|"
    r"app|license|subscription|service|storage|shared[_-]?access|primary|secondary|consumer|"
    r"webhook|auth|ingest(?:ion)?|admin|write|search|management|live|prod|dev|test|user|organization|org|project|server|bot|site|deploy|upload|publish)[_-]?key|password|passwd|passphrase|pwd|secret|"
    r"client[_-]?secret|token|access[_-]?token|refresh[_-]?token|auth[_-]?token|id[_-]?token|"
    r"session[_-]?token|bearer[_-]?token|bot[_-]?token|credentials?|dsn|"
    r"conn(?:ection)?[_-]?str(?:ing)?|database[_-]?url|db[_-]?url|webhook[_-]?url|"
    r"sas[_-]?token|sas|signature|cookie|session[_-]?id|sessionid|private[_-]?key)"
)

_SECRET_RULES: tuple[Rule, ...] = (
    # -- key material ---------------------------------------------------------------
    # the body up to the next "-----" (linear, also without an END line: a cut-off key)
    Rule("private key block", ("private key",),
         r"-----BEGIN[A-Z ]*PRIVATE KEY(?: BLOCK)?-----[^-]*(?:-(?!----)[^-]*)*"
         r"(?:-----END[A-Z ]*PRIVATE KEY(?: BLOCK)?-----)?"),
    Rule("age secret key", ("age-secret-key-1",), r"AGE-SECRET-KEY-1[0-9A-Z]{58}"),
    # -- model providers --------------------------------------------------------------
    # OpenAI (sk-, sk-proj-, sk-svcacct-, sk-admin-), Anthropic (sk-ant-api03-), DeepSeek,
    # OpenRouter (sk-or-v1-), Moonshot, Qwen/DashScope: all "sk-"
    Rule("sk- keys", ("sk-",), r"\bsk-[A-Za-z0-9_-]{20,}"),
    Rule("ElevenLabs key", ("sk_",), r"\bsk_[a-f0-9]{48}\b"),
    Rule("xAI key", ("xai-",), r"\bxai-[A-Za-z0-9]{40,}"),
    Rule("Groq key", ("gsk_",), r"\bgsk_[A-Za-z0-9]{20,}"),
    Rule("Hugging Face token", ("hf_",), r"\bhf_[A-Za-z0-9]{30,}"),
    Rule("Replicate token", ("r8_",), r"\br8_[A-Za-z0-9]{30,}"),
    Rule("Perplexity key", ("pplx-",), r"\bpplx-[A-Za-z0-9]{30,}"),
    Rule("NVIDIA key", ("nvapi-",), r"\bnvapi-[A-Za-z0-9_-]{40,}"),
    Rule("Cerebras key", ("csk-",), r"\bcsk-[a-z0-9]{30,}"),
    Rule("Fireworks key", ("fw_",), r"\bfw_[A-Za-z0-9]{20,}"),
    Rule("Tavily key", ("tvly-",), r"\btvly-(?:dev-|prod-)?[A-Za-z0-9]{24,}"),
    Rule("Firecrawl key", ("fc-",), r"\bfc-[a-f0-9]{32}\b"),
    Rule("Jina key", ("jina_",), r"\bjina_[A-Za-z0-9_-]{40,}"),
    Rule("LangSmith key", ("lsv2_",), r"\blsv2_(?:pt|sk)_[a-f0-9]{32}_[a-f0-9]{10}\b"),
    # -- cloud ------------------------------------------------------------------------
    Rule("AWS access key id", ("akia", "asia", "abia", "acca", "a3t"),
         r"\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}\b"),
    Rule("Google API key", ("aiza",), r"\bAIza[0-9A-Za-z_-]{35}"),
    Rule("Google OAuth token", ("ya29.",), r"\bya29\.[0-9A-Za-z_-]{20,}"),
    Rule("Azure AD client secret", ("q~",), r"(?<![A-Za-z0-9_~.])[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.-]{31,34}"),
    # Azure Storage / Service Bus / Event Hubs connection strings and SAS signatures
    Rule("Azure account key", ("accountkey", "sharedaccesskey"),
         r"(?i)\b(?:AccountKey|SharedAccessKey)\s*=\s*(?P<S>(?!\[REDACTED\])[A-Za-z0-9+/=]{20,})"),
    Rule("SAS signature", ("sig=",), r"(?i)[?&;\s]sig=(?P<S>[A-Za-z0-9%+/=_-]{16,})"),
    Rule("Alibaba access key id", ("ltai",), r"\bLTAI[A-Za-z0-9]{20}\b"),
    Rule("DigitalOcean token", ("dop_v1_", "doo_v1_", "dor_v1_"), r"\bdo[por]_v1_[a-f0-9]{64}\b"),
    Rule("Databricks token", ("dapi",), r"\bdapi[a-f0-9]{32}(?:-\d)?\b"),
    Rule("HashiCorp Vault token", ("hvs.", "hvb.", "hvr."), r"\bhv[sbr]\.[A-Za-z0-9_-]{24,}"),
    Rule("Terraform Cloud token", ("atlasv1",), r"\b[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{60,}"),
    Rule("Cloudflare origin CA key", ("v1.0-",), r"\bv1\.0-[a-f0-9]{24}-[a-f0-9]{146}"),
    Rule("Heroku key", ("hrku-",), r"\bHRKU-[A-Za-z0-9_-]{40,}"),
    Rule("Fly.io token", ("fm1", "fm2_", "flyv1"), r"\b(?:FlyV1\s+)?fm[12][ar]?_[A-Za-z0-9+/=_-]{40,}"),
    Rule("Supabase key", ("sbp_", "sb_secret_"), r"\b(?:sbp_[a-f0-9]{40}|sb_secret_[A-Za-z0-9_-]{20,})"),
    Rule("Netlify token", ("nfp_",), r"\bnfp_[A-Za-z0-9]{36,}"),
    Rule("PlanetScale token", ("pscale_",), r"\bpscale_(?:tkn|pw|oauth)_[A-Za-z0-9_.-]{32,}"),
    Rule("Pulumi token", ("pul-",), r"\bpul-[a-f0-9]{40}\b"),
    Rule("Doppler token", ("dp.",), r"\bdp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,}"),
    Rule("Dynatrace token", ("dt0c01.",), r"\bdt0c01\.[A-Z0-9]{24}\.[A-Z0-9]{64}\b"),
    Rule("New Relic key", ("nrak-", "nrjs-", "nrii-"), r"\bNR(?:AK|JS|II)-[A-Za-z0-9]{19,}"),
    Rule("Grafana token", ("glsa_", "glc_"), r"\b(?:glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}|glc_[A-Za-z0-9+/=]{32,})"),
    Rule("Sentry token", ("sntrys_", "sntryu_"), r"\bsntry[su]_[A-Za-z0-9+/=_]{40,}"),
    Rule("Prefect key", ("pnu_",), r"\bpnu_[A-Za-z0-9]{36}\b"),
    Rule("1Password token", ("ops_ey",), r"\bops_eyJ[A-Za-z0-9+/=_-]{40,}"),
    Rule("Artifactory key", ("akcp",), r"\bAKCp[A-Za-z0-9]{60,}"),
    # -- code hosting and package registries ----------------------------------------------
    Rule("GitHub token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
         r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})"),
    Rule("GitLab token", ("glpat-", "gldt-", "glrt-", "glcbt-", "glptt-", "glsoat-", "glft-", "glimt-", "glagent-", "gloas-"),
         r"\bgl(?:pat|dt|rt|cbt|ptt|soat|ft|imt|agent|oas)-[A-Za-z0-9_.-]{20,}"),
    Rule("Bitbucket / Atlassian token", ("atatt3", "atctt3", "atbb"),
         r"\b(?:AT[AC]TT3[A-Za-z0-9_=-]{40,}|ATBB[A-Za-z0-9]{32,})"),
    Rule("npm token", ("npm_",), r"\bnpm_[A-Za-z0-9]{36}\b"),
    Rule("PyPI token", ("pypi-",), r"\bpypi-[A-Za-z0-9_-]{50,}"),
    Rule("RubyGems key", ("rubygems_",), r"\brubygems_[a-f0-9]{48}\b"),
    Rule("NuGet key", ("oy2",), r"\boy2[a-z0-9]{43}\b"),
    Rule("Docker Hub token", ("dckr_pat_", "dckr_oat_"), r"\bdckr_[po]at_[A-Za-z0-9_-]{20,}"),
    Rule("Clojars token", ("clojars_",), r"(?i)\bCLOJARS_[a-z0-9]{40,}"),
    Rule("Crates.io token", ("cio",), r"\bcio[A-Za-z0-9]{32}\b"),
    Rule("Hex/Buildkite/JFrog tokens", ("bkua_",), r"\bbkua_[a-f0-9]{40}\b"),
    # -- SaaS -------------------------------------------------------------------------
    Rule("Slack token", ("xox", "xapp-"), r"\b(?:xox[abposre]|xapp)-[A-Za-z0-9-]{10,}"),
    Rule("Stripe key", ("_live_", "_test_", "whsec_"),
         r"\b(?:(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}|whsec_[A-Za-z0-9+/=]{24,})"),
    Rule("SendGrid key", ("sg.",), r"\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}"),
    Rule("Mailgun key", ("key-",), r"\bkey-[a-f0-9]{32}\b"),
    Rule("Mailchimp key", ("-us",), r"\b[a-f0-9]{32}-us\d{1,2}\b"),
    Rule("Brevo key", ("xkeysib-", "xsmtpsib-"), r"\bx(?:key|smtp)sib-[a-f0-9]{64}-[A-Za-z0-9]{16}\b"),
    Rule("Twilio key", ("sk",), r"\bSK[a-f0-9]{32}\b"),
    Rule("Shopify token", ("shpat_", "shpca_", "shppa_", "shpss_"), r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b"),
    Rule("Square token", ("sq0atp-", "sq0csp-", "eaaa"), r"\b(?:sq0(?:atp|csp)-[A-Za-z0-9_-]{22,}|EAAA[A-Za-z0-9_-]{60})"),
    Rule("Facebook token", ("eaa",), r"\bEAA[A-Za-z0-9]{60,}"),
    Rule("Notion token", ("secret_", "ntn_"), r"\b(?:secret_[A-Za-z0-9]{43}|ntn_[A-Za-z0-9]{40,})\b"),
    Rule("Linear key", ("lin_api_", "lin_oauth_"), r"\blin_(?:api|oauth)_[A-Za-z0-9]{40}\b"),
    Rule("Figma token", ("figd_",), r"\bfigd_[A-Za-z0-9_-]{40,}"),
    Rule("Postman key", ("pmak-",), r"\bPMAK-[a-f0-9]{24}-[a-f0-9]{34}\b"),
    Rule("PostHog key", ("phx_",), r"\bphx_[A-Za-z0-9]{40,}"),
    Rule("Typeform token", ("tfp_",), r"\btfp_[A-Za-z0-9_.=-]{40,}"),
    Rule("Contentful token", ("cfpat-",), r"\bCFPAT-[A-Za-z0-9_-]{40,}"),
    Rule("Airtable token", ("pat",), r"\bpat[A-Za-z0-9]{14}\.[a-f0-9]{64}\b"),
    Rule("Dropbox token", ("sl.",), r"\bsl\.[A-Za-z0-9_-]{100,}"),
    Rule("Mapbox token", ("sk.eyj", "pk.eyj"), r"\b[ps]k\.eyJ[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{10,}"),
    Rule("Shippo token", ("shippo_",), r"\bshippo_(?:live|test)_[a-f0-9]{40}\b"),
    Rule("Twitch token", ("oauth:",), r"\boauth:[a-z0-9]{30}\b"),
    Rule("Frame.io token", ("fio-u-",), r"\bfio-u-[A-Za-z0-9_=-]{64}"),
    Rule("Duffel/Flutterwave keys", ("duffel_", "flwsec"),
         r"\b(?:duffel_(?:test|live)_[A-Za-z0-9_-]{43}|FLWSECK(?:_TEST)?-[a-h0-9]{32}-X)"),
    Rule("Telegram bot token", (":aa",), r"(?<![0-9])[0-9]{8,10}:AA[A-Za-z0-9_-]{33}\b"),
    Rule("Discord bot token", ("discord",),
         r"(?i)discord[\w.-]{0,40}[\s'\"]{0,3}(?:=|:)\s*[\"']?(?P<S>[MNO][A-Za-z0-9_-]{23,27}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,})"),
    # -- tokens that carry their own structure -----------------------------------------
    Rule("JSON Web Token", ("eyj",), r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"),
    # -- webhook URLs: the path is the credential -----------------------------------------
    Rule("webhook URL", ("hooks.slack.com", "discord", "webhook.office.com", "hooks.zapier.com", "chat.googleapis.com", "api.telegram.org/bot"),
         r"(?i)\b(?:hooks\.slack\.com/(?:services|workflows|triggers)|"
         r"(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks|"
         r"[a-z0-9-]*\.?webhook\.office\.com/webhook[a-z0-9]*|hooks\.zapier\.com/hooks/catch|"
         r"api\.telegram\.org/bot)(?P<S>/?[^\s\"'<>?#]+)"),
    # -- credentials in URLs and connection strings -----------------------------------------
    # scheme://user:password@host, also with an empty user (redis://:pw@host)
    # (the patterns start at "://", a literal, so that they are searched for quickly)
    Rule("password in URL", ("://",), r"://[^\s:/@\"'<>]*:(?P<S>[^\s@/\"'<>]+)@"),
    # scheme://token@host (a token as the user name: Sentry DSNs, git over https)
    Rule("token as URL user", ("://",), r"://(?P<S>[A-Za-z0-9_.~-]{16,})@"),
    # signed query parameters: ?key=..., &access_token=..., &X-Amz-Signature=...
    Rule("secret in query string", ("key=", "token=", "signature=", "secret=", "password=", "sig=", "auth="),
         r"(?i)[?&](?:[a-z0-9_.-]*(?:key|token|signature|secret|password|auth)|x-amz-credential|x-goog-credential)=(?P<S>[^&\s#\"'<>]{4,})"),
    # -- headers ---------------------------------------------------------------------
    Rule("authorization scheme", ("bearer", "basic ", "token ", "ssws", "apikey "),
         r"(?i)\b(?:bearer|basic|token|ssws|apikey)\s+(?P<S>[A-Za-z0-9._~+/=-]{8,})"),
    Rule("secret header", ("authorization", "cookie", "api-key", "apikey", "token:", "private-token", "subscription-key", "signature:"),
         r"(?im)(?:^|[\s\"'{,])(?:proxy-)?(?:authorization|cookie|set-cookie|x-api-key|api-key|"
         r"x-goog-api-key|apikey|x-auth-token|x-access-token|private-token|x-vault-token|"
         r"ocp-apim-subscription-key|x-hub-signature(?:-256)?|x-slack-signature)[\"']?\s*:\s*[\"']?"
         r"(?P<S>[^\r\n\"']+)"),
    # -- command lines ---------------------------------------------------------------
    Rule("password flag", ("--pass", "--pwd", "--token", "--secret", "--api-key", "--apikey", "--auth", "--client-secret", "--access-key", "--secret-key"),
         r"(?i)(?:^|[\s\"'])--(?:password|passwd|pass|pwd|token|secret|api[-_]?key|apikey|auth[-_]token|"
         r"client[-_]secret|access[-_]key|secret[-_]key|access[-_]token)(?:=|\s+)[\"']?(?P<S>[^\s\"']+)"),
    Rule("mysql -p", ("mysql", "mariadb", "sshpass"),
         r"(?i)\b(?:mysql|mysqldump|mysqladmin|mariadb|sshpass)\b[^\n|;&]{0,200}?\s-p\s?[\"']?(?P<S>[^\s\"'-][^\s\"']*)"),
    Rule("netrc password", ("login",), r"(?i)\blogin\s+\S+\s+password\s+(?P<S>[^\s\"']+)"),
    Rule("User/Password pairs", ("pwd=", "password=", "user id="),
         r"(?i)(?:^|[;\s])(?:pwd|password)\s*=\s*(?P<S>[^;\r\n\"']+)"),
    # -- NAME_API_KEY=..., "client_secret": "...", password: ... -------------------------------
    Rule("secret assignment",
         ("key", "pass", "pwd", "secret", "token", "credential", "dsn", "conn", "url", "sas",
          "signature", "cookie", "session"),
         # The name is found by its secret ending first (OPENAI_[API_KEY]), so a value is
         # only ever read after a secret's name, once.
         r"(?i)(?<![A-Za-z0-9])" + _SECRET_NAME + r"(?![A-Za-z0-9])\\?[\"']?[ \t]*(?:=|:=|=>|:)[ \t]*"
         + _VALUE),
)  # fmt: skip


def _luhn_ok(match: re.Match[str]) -> bool:
    digits = [int(c) for c in match.group(0) if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _iban_ok(match: re.Match[str]) -> bool:
    compact = match.group(0).replace(" ", "").upper()
    if not 15 <= len(compact) <= 34:
        return False
    rotated = compact[4:] + compact[:4]
    number = "".join(str(int(c, 36)) for c in rotated)
    return int(number) % 97 == 1


_PII_RULES: tuple[Rule, ...] = (
    Rule("e-mail address", ("@",), r"(?<![\w.+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}\b"),
    Rule("IBAN", (), r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b", _iban_ok),
    Rule("payment card", (), r"(?<![\d.-])(?:\d[ -]?){12,18}\d(?![\d-])", _luhn_ok),
    Rule("phone number", (),
         r"(?<![\w+])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){2,4}|\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}|\b\d{3}[.-]\d{3}[.-]\d{4})(?![\w-])"),
)  # fmt: skip

# Dict keys whose values are masked whole. Anchored so that `max_tokens` or
# `input_tokens` (usage counts) are not mistaken for secrets.
_SECRET_KEY = (
    r"(?i)^(?:.*[-_.])?(?:" + _SECRET_NAME + r"|auth|authorization|proxy-authorization|"
    r"set-cookie|x-api-key)$"
)


class _CompiledRule:
    """A rule's regex, compiled on first use, and its replacement.

    A case-insensitive rule (`(?i)`) is run case-sensitively on the lower-cased text, which
    Python's regex engine does several times faster; the spans found apply to the original
    (`str.lower()` keeps positions unless the text has one of the few characters whose
    lower-case form is longer: then the rule runs with IGNORECASE on the original).
    """

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self._regex: re.Pattern[str] | None = None
        self._ignorecase: re.Pattern[str] | None = None
        self.caseless = rule.pattern.startswith(("(?i)", "(?im)"))

    def scrub(self, text: str, lowered: str) -> str:
        if self._regex is None:
            self._compile()
        assert self._regex is not None
        if not self.caseless:
            return self._replace(text, self._regex.finditer(text))
        if len(lowered) == len(text):
            return self._replace(text, self._regex.finditer(lowered))
        assert self._ignorecase is not None
        return self._replace(text, self._ignorecase.finditer(text))

    def _compile(self) -> None:
        pattern = _literal_first(self.rule.pattern)
        if self.caseless:
            pattern = pattern.replace("(?i)", "", 1).replace("(?im)", "(?m)", 1)
            self._ignorecase = re.compile(pattern, re.IGNORECASE)
            pattern = _lower_literals(pattern)
        self._regex = re.compile(pattern)

    def _replace(self, text: str, matches: Iterable[re.Match[str]]) -> str:
        pieces: list[str] = []
        done = 0  # text before this index is already in `pieces`
        check = self.rule.check
        for match in matches:
            start, end = _secret_span(match)
            if start < done or (check is not None and not check(match)):
                continue
            pieces += (text[done:start], REDACTED)
            done = end
        if not pieces:
            return text
        pieces.append(text[done:])
        return "".join(pieces)


@functools.cache
def _pattern_parts() -> re.Pattern[str]:
    return re.compile(r"\\.|\(\?P<\w+>|\(\?P=\w+\)|[A-Z]+")


def _lower_literals(pattern: str) -> str:
    """A pattern's letters in lower case, escapes (`\\S`) and group names kept."""
    return _pattern_parts().sub(
        lambda part: part.group(0).lower() if part.group(0).isalpha() else part.group(0), pattern
    )


@functools.cache
def _leading_boundary() -> re.Pattern[str]:
    return re.compile(r"^\\b((?:[A-Za-z0-9_-]|\\\.)+)(?![{*+?])")


def _literal_first(pattern: str) -> str:
    """`\\bsk-...` as `sk-(?<!\\wsk-)...`: the same matches, but a pattern that starts with
    a literal is searched for with a fast substring scan instead of a try at every position."""
    found = _leading_boundary().match(pattern)
    if found is None:
        return pattern
    literal = found.group(1)
    return f"{literal}(?<!\\w{literal}){pattern[found.end() :]}"


def _secret_span(match: re.Match[str]) -> tuple[int, int]:
    for name in ("S", "S2", "S3", "S4"):
        try:
            span = match.span(name)
        except IndexError:
            continue
        if span[0] >= 0:
            return span
    return match.span()


def _overlaps(found: str, word: str) -> bool:
    """Whether `word` may start inside a match of `found` and run past its end."""
    return any(word.startswith(found[i:]) for i in range(1, len(found)))


_Trie = dict[str, "_Trie"]


def _keyword_regex(keywords: Iterable[str]) -> re.Pattern[str]:
    """One regex that finds any of `keywords`, shaped as a trie so that each position
    costs one branch per distinct next character instead of one per keyword."""
    trie: _Trie = {}
    for word in keywords:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    return re.compile(_trie_pattern(trie))


def _trie_pattern(node: _Trie) -> str:
    branches = [
        re.escape(char) + _trie_pattern(child) for char, child in sorted(node.items()) if char
    ]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    # A keyword ending here: the longer ones are optional (any keyword found is enough).
    return f"(?:{body})?" if "" in node else body


class _RuleSet:
    """Rules gated by keywords; compiled lazily and shared by every `Redactor`."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self._rules = [_CompiledRule(rule) for rule in rules]
        self._always = [index for index, rule in enumerate(rules) if not rule.keywords]
        self._gated = [(index, rule.keywords) for index, rule in enumerate(rules) if rule.keywords]
        self._keywords: re.Pattern[str] | None = None
        self._rules_for: dict[str, tuple[int, ...]] = {}
        self._overlapping: dict[str, tuple[str, ...]] = {}
        self._lock = threading.Lock()

    def scrub(self, text: str) -> str:
        lowered = text.lower()
        for index in self._triggered(lowered):
            scrubbed = self._rules[index].scrub(text, lowered)
            if scrubbed is not text:
                text, lowered = scrubbed, scrubbed.lower()
        return text

    def _triggered(self, lowered: str) -> Sequence[int]:
        if not self._gated:
            return self._always
        if self._keywords is None:
            self._prepare()
        assert self._keywords is not None
        found = set(self._keywords.findall(lowered))
        if not found:
            return self._always
        for keyword in list(found):
            found.update(word for word in self._overlapping[keyword] if word in lowered)
        chosen = set(self._always)
        for keyword in found:
            chosen.update(self._rules_for[keyword])
        return sorted(chosen)

    def _prepare(self) -> None:
        """The keyword finder; for each keyword the rules it stands for (its own and those
        of every keyword inside it: the finder reports `--token`, not the `token` within)
        and the keywords that may start inside it and run on (`sk_` may hide `_live_`)."""
        with self._lock:
            if self._keywords is not None:
                return
            keywords = {keyword for _, words in self._gated for keyword in words}
            self._rules_for = {
                found: tuple(
                    index for index, words in self._gated if any(w in found for w in words)
                )
                for found in keywords
            }
            self._overlapping = {
                found: tuple(
                    word for word in keywords if word not in found and _overlaps(found, word)
                )
                for found in keywords
            }
            self._keywords = _keyword_regex(keywords)


_SECRETS = _RuleSet(_SECRET_RULES)
_PII = _RuleSet(_PII_RULES)


class Redactor:
    """Masks secrets (and personal data if `pii`) in text and decides which mapping keys
    hold secrets. Cheap to build: regexes compile on first use."""

    def __init__(
        self,
        extra_patterns: Sequence[str] = (),
        extra_keys: Sequence[str] = (),
        *,
        pii: bool = False,
    ) -> None:
        self._sets = [_SECRETS, _PII] if pii else [_SECRETS]
        self._extra_patterns = tuple(extra_patterns)
        self._extra: re.Pattern[str] | None = None
        self._key_sources = (_SECRET_KEY, *extra_keys)
        self._key_patterns: list[re.Pattern[str]] | None = None
        self._key_cache: dict[str, bool] = {}

    @property
    def pii(self) -> bool:
        return _PII in self._sets

    def scrub(self, text: str) -> str:
        """Replace every secret in `text` with [REDACTED]."""
        for rule_set in self._sets:
            text = rule_set.scrub(text)
        if self._extra_patterns:
            if self._extra is None:
                self._extra = re.compile("|".join(f"(?:{p})" for p in self._extra_patterns))
            text = self._extra.sub(REDACTED, text)
        return text

    @property
    def known_keys(self) -> dict[str, bool]:
        """The keys already classified (read it before calling `is_secret_key`)."""
        return self._key_cache

    def is_secret_key(self, key: str) -> bool:
        cached = self._key_cache.get(key)
        if cached is None:
            if self._key_patterns is None:
                self._key_patterns = [re.compile(p) for p in self._key_sources]
            cached = any(p.search(key) for p in self._key_patterns)
            if len(self._key_cache) < 4096:
                self._key_cache[key] = cached
        return cached
