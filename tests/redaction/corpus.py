"""Secret shapes in their providers' real formats, with synthetic values, and near-miss
strings that must stay readable. Values are generated (seeded) so that no secret-looking
literal sits in the repository."""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

_rng = random.Random(20261204)
ALNUM = string.ascii_letters + string.digits
UPPER_ALNUM = string.ascii_uppercase + string.digits
LOWER_ALNUM = string.ascii_lowercase + string.digits
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"
URLSAFE = ALNUM + "-_"


def r(alphabet: str, n: int) -> str:
    return "".join(_rng.choice(alphabet) for _ in range(n))


@dataclass(frozen=True)
class Shape:
    provider: str
    kind: str
    text: str  # how it shows up: in a message, a config line, a command, a URL
    secret: str  # the part that must not survive


def _shape(provider: str, kind: str, secret: str, template: str = "using {s} now") -> Shape:
    return Shape(provider, kind, template.format(s=secret), secret)


def _jwt() -> str:
    return f"eyJhbGciOiJSUzI1NiJ9.eyJ{r(URLSAFE, 40)}.{r(URLSAFE, 43)}"


def _shapes() -> list[Shape]:
    s = _shape
    out = [
        # model providers
        s("OpenAI", "project key", f"sk-proj-{r(URLSAFE, 74)}T3BlbkFJ{r(URLSAFE, 74)}"),
        s("OpenAI", "legacy key", f"sk-{r(ALNUM, 20)}T3BlbkFJ{r(ALNUM, 20)}"),
        s("OpenAI", "service account key", f"sk-svcacct-{r(URLSAFE, 60)}"),
        s("OpenAI", "admin key", f"sk-admin-{r(URLSAFE, 60)}"),
        s("OpenAI", "env assignment", f"sk-{r(ALNUM, 48)}", "OPENAI_API_KEY={s}"),
        s("Anthropic", "API key", f"sk-ant-api03-{r(URLSAFE, 93)}AA"),
        s("Anthropic", "admin key", f"sk-ant-admin01-{r(URLSAFE, 93)}AA"),
        s("Anthropic", "x-api-key header", f"sk-ant-api03-{r(URLSAFE, 93)}AA", "x-api-key: {s}"),
        s("OpenRouter", "key", f"sk-or-v1-{r(HEX, 64)}"),
        s("DeepSeek", "key", f"sk-{r(HEX, 32)}"),
        s("Google AI", "API key", f"AIza{r(URLSAFE, 35)}"),
        s("Google AI", "x-goog-api-key header", f"AIza{r(URLSAFE, 35)}", "x-goog-api-key: {s}"),
        s("Groq", "key", f"gsk_{r(ALNUM, 52)}"),
        s("Hugging Face", "user token", f"hf_{r(ALNUM, 34)}"),
        s("Replicate", "token", f"r8_{r(ALNUM, 37)}"),
        s("xAI", "key", f"xai-{r(ALNUM, 80)}"),
        s("Perplexity", "key", f"pplx-{r(ALNUM, 48)}"),
        s("NVIDIA", "NIM key", f"nvapi-{r(URLSAFE, 64)}"),
        s("Cerebras", "key", f"csk-{r(LOWER_ALNUM, 48)}"),
        s("Fireworks", "key", f"fw_{r(ALNUM, 24)}"),
        s("Mistral", "env assignment", r(ALNUM, 32), "MISTRAL_API_KEY={s}"),
        s("Cohere", "env assignment", r(ALNUM, 40), 'export CO_API_KEY="{s}"'),
        s("Together", "env assignment", r(HEX, 64), "TOGETHER_API_KEY: {s}"),
        s("Azure OpenAI", "api-key header", r(HEX, 32), "api-key: {s}"),
        s("ElevenLabs", "key", f"sk_{r(HEX, 48)}"),
        s("Tavily", "key", f"tvly-dev-{r(ALNUM, 32)}"),
        s("Firecrawl", "key", f"fc-{r(HEX, 32)}"),
        s("Jina", "key", f"jina_{r(URLSAFE, 60)}"),
        s("LangSmith", "key", f"lsv2_pt_{r(HEX, 32)}_{r(HEX, 10)}"),
        s("Voyage", "json field", f"pa-{r(URLSAFE, 43)}", '{{"voyage_api_key": "{s}"}}'),
        # cloud
        s("AWS", "access key id", "AKIA" + r("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)),
        s("AWS", "temporary key id", "ASIA" + r("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)),
        s("AWS", "secret access key", r(B64, 40), "aws_secret_access_key = {s}"),
        s("AWS", "session token", r(B64, 300), "AWS_SESSION_TOKEN={s}"),
        s(
            "AWS",
            "presigned URL signature",
            r(HEX, 64),
            "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature={s}",
        ),
        s("Google Cloud", "OAuth access token", f"ya29.{r(URLSAFE, 150)}"),
        s(
            "Google Cloud",
            "service account private key",
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" + r(B64, 200),
            '{{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\n{s}\\n'
            '-----END PRIVATE KEY-----\\n"}}',
        ),
        s(
            "Azure Storage",
            "connection string account key",
            r(B64, 86) + "==",
            "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={s};"
            "EndpointSuffix=core.windows.net",
        ),
        s(
            "Azure Storage",
            "SAS signature",
            r(ALNUM, 40) + "%3D",
            "https://acme.blob.core.windows.net/c/report.pdf?sv=2022-11-02&ss=b&srt=o&sp=r"
            "&se=2026-12-31T00:00:00Z&st=2026-01-01&spr=https&sig={s}",
        ),
        s(
            "Azure Storage",
            "SAS token assignment",
            f"{r(ALNUM, 43)}%3D",
            'AZURE_SAS_TOKEN="sv=2022-11-02&sig={s}"',
        ),
        s(
            "Azure Service Bus",
            "shared access key",
            r(B64, 43) + "=",
            "Endpoint=sb://acme.servicebus.windows.net/;SharedAccessKeyName=Root;"
            "SharedAccessKey={s}",
        ),
        s(
            "Azure Event Hubs",
            "connection string env",
            r(B64, 43) + "=",
            "AZURE_EVENTHUB_CONNECTION_STRING=Endpoint=sb://x.servicebus.windows.net/;"
            "SharedAccessKeyName=send;SharedAccessKey={s}",
        ),
        s("Azure AD", "client secret", f"{r(ALNUM, 3)}8Q~{r(ALNUM + '_~.-', 34)}"),
        s("Alibaba Cloud", "access key id", f"LTAI{r(ALNUM, 20)}"),
        s("DigitalOcean", "personal token", f"dop_v1_{r(HEX, 64)}"),
        s("DigitalOcean", "OAuth token", f"doo_v1_{r(HEX, 64)}"),
        s("Databricks", "token", f"dapi{r(HEX, 32)}"),
        s("HashiCorp Vault", "service token", f"hvs.{r(URLSAFE, 90)}"),
        s("HashiCorp Terraform", "API token", f"{r(ALNUM, 14)}.atlasv1.{r(URLSAFE, 67)}"),
        s("Cloudflare", "API token env", r(URLSAFE, 40), "CLOUDFLARE_API_TOKEN={s}"),
        s("Cloudflare", "origin CA key", f"v1.0-{r(HEX, 24)}-{r(HEX, 146)}"),
        s("Heroku", "API key", f"HRKU-{r(URLSAFE, 60)}"),
        s("Fly.io", "token", f"FlyV1 fm2_{r(B64, 120)}"),
        s("Supabase", "access token", f"sbp_{r(HEX, 40)}"),
        s("Supabase", "secret key", f"sb_secret_{r(URLSAFE, 32)}"),
        s("Netlify", "token", f"nfp_{r(ALNUM, 40)}"),
        s("PlanetScale", "password", f"pscale_pw_{r(URLSAFE, 43)}"),
        s("Pulumi", "token", f"pul-{r(HEX, 40)}"),
        s("Doppler", "personal token", f"dp.pt.{r(ALNUM, 43)}"),
        s("Dynatrace", "token", f"dt0c01.{r(UPPER_ALNUM, 24)}.{r(UPPER_ALNUM, 64)}"),
        s("New Relic", "user key", f"NRAK-{r(UPPER_ALNUM, 27)}"),
        s("Grafana", "service account token", f"glsa_{r(ALNUM, 32)}_{r(HEX, 8)}"),
        s("Grafana Cloud", "token", f"glc_{r(B64, 80)}"),
        s("Datadog", "API key env", r(HEX, 32), "DD_API_KEY={s}"),
        s("Sentry", "org token", f"sntrys_{r(B64, 80)}"),
        s("Sentry", "DSN", r(HEX, 32), "SENTRY_DSN=https://{s}@o12345.ingest.sentry.io/67890"),
        s("Prefect", "API key", f"pnu_{r(ALNUM, 36)}"),
        s("1Password", "service account token", f"ops_eyJ{r(B64, 250)}"),
        s("JFrog Artifactory", "API key", f"AKCp{r(ALNUM, 69)}"),
        # code hosting and package registries
        s("GitHub", "classic token", f"ghp_{r(ALNUM, 36)}"),
        s("GitHub", "fine-grained token", f"github_pat_{r(ALNUM, 22)}_{r(ALNUM, 59)}"),
        s("GitHub", "app installation token", f"ghs_{r(ALNUM, 36)}"),
        s("GitHub", "OAuth token", f"gho_{r(ALNUM, 36)}"),
        s(
            "GitHub",
            "token in clone URL",
            f"ghp_{r(ALNUM, 36)}",
            "git clone https://x-access-token:{s}@github.com/acme/app.git",
        ),
        s("GitLab", "personal token", f"glpat-{r(URLSAFE, 20)}"),
        s("GitLab", "deploy token", f"gldt-{r(URLSAFE, 20)}"),
        s("GitLab", "runner token", f"glrt-{r(URLSAFE, 20)}"),
        s("GitLab", "private-token header", f"glpat-{r(URLSAFE, 20)}", "PRIVATE-TOKEN: {s}"),
        s("Atlassian", "API token", f"ATATT3{r(URLSAFE, 186)}"),
        s("Bitbucket", "app password", f"ATBB{r(ALNUM, 32)}"),
        s("npm", "access token", f"npm_{r(ALNUM, 36)}"),
        s(
            "npm",
            ".npmrc auth token",
            f"npm_{r(ALNUM, 36)}",
            "//registry.npmjs.org/:_authToken={s}",
        ),
        s("PyPI", "API token", f"pypi-AgEIcHlwaS5vcmc{r(URLSAFE, 70)}"),
        s(
            "PyPI",
            "token in index URL",
            f"pypi-AgEIcHlwaS5vcmc{r(URLSAFE, 70)}",
            "pip install --index-url https://__token__:{s}@upload.example/simple pkg",
        ),
        s("RubyGems", "API key", f"rubygems_{r(HEX, 48)}"),
        s("NuGet", "API key", f"oy2{r(LOWER_ALNUM, 43)}"),
        s("Docker Hub", "personal access token", f"dckr_pat_{r(URLSAFE, 27)}"),
        s("Clojars", "deploy token", f"CLOJARS_{r(LOWER_ALNUM, 60)}"),
        s("crates.io", "token", f"cio{r(ALNUM, 32)}"),
        s("Buildkite", "agent token", f"bkua_{r(HEX, 40)}"),
        # SaaS
        s("Slack", "bot token", f"xoxb-{r('0123456789', 12)}-{r('0123456789', 13)}-{r(ALNUM, 24)}"),
        s(
            "Slack",
            "user token",
            f"xoxp-{r('0123456789', 12)}-{r('0123456789', 12)}-{r(ALNUM, 32)}",
        ),
        s("Slack", "app token", f"xapp-1-A{r(UPPER_ALNUM, 10)}-{r('0123456789', 13)}-{r(HEX, 64)}"),
        s(
            "Slack",
            "incoming webhook",
            f"/T{r(UPPER_ALNUM, 10)}/B{r(UPPER_ALNUM, 10)}/{r(ALNUM, 24)}",
            "POST https://hooks.slack.com/services{s}",
        ),
        s(
            "Discord",
            "webhook",
            f"/{r('0123456789', 18)}/{r(URLSAFE, 68)}",
            "https://discord.com/api/webhooks{s}",
        ),
        s(
            "Discord",
            "bot token",
            f"M{r(ALNUM, 25)}.{r(URLSAFE, 6)}.{r(URLSAFE, 38)}",
            "DISCORD_BOT_TOKEN={s}",
        ),
        s(
            "Microsoft Teams",
            "incoming webhook",
            f"/{r(HEX, 8)}-{r(HEX, 4)}@{r(HEX, 8)}/IncomingWebhook/{r(HEX, 32)}/{r(HEX, 8)}",
            "https://acme.webhook.office.com/webhookb2{s}",
        ),
        s(
            "Zapier",
            "catch hook",
            f"/{r('0123456789', 7)}/{r(LOWER_ALNUM, 7)}/",
            "curl -X POST https://hooks.zapier.com/hooks/catch{s}",
        ),
        s(
            "Google Chat",
            "webhook key and token",
            r(URLSAFE, 39),
            "https://chat.googleapis.com/v1/spaces/AAA/messages?key={s}&token=abc",
        ),
        s("Telegram", "bot token", f"{r('123456789', 10)}:AA{r(URLSAFE, 33)}"),
        s("Stripe", "live secret key", f"sk_live_{r(ALNUM, 99)}"),
        s("Stripe", "restricted key", f"rk_live_{r(ALNUM, 99)}"),
        s("Stripe", "test key", f"sk_test_{r(ALNUM, 24)}"),
        s("Stripe", "webhook secret", f"whsec_{r(ALNUM, 32)}"),
        s("SendGrid", "API key", f"SG.{r(URLSAFE, 22)}.{r(URLSAFE, 43)}"),
        s("Mailgun", "API key", f"key-{r(HEX, 32)}"),
        s("Mailchimp", "API key", f"{r(HEX, 32)}-us{_rng.randint(1, 21)}"),
        s("Brevo", "API key", f"xkeysib-{r(HEX, 64)}-{r(ALNUM, 16)}"),
        s("Twilio", "API key", f"SK{r(HEX, 32)}"),
        s("Twilio", "auth token env", r(HEX, 32), "TWILIO_AUTH_TOKEN={s}"),
        s("Shopify", "admin token", f"shpat_{r(HEX, 32)}"),
        s("Shopify", "shared secret", f"shpss_{r(HEX, 32)}"),
        s("Square", "access token", f"EAAA{r(URLSAFE, 60)}"),
        s("Square", "OAuth secret", f"sq0csp-{r(URLSAFE, 43)}"),
        s("Facebook", "page token", f"EAA{r(ALNUM, 180)}"),
        s("Notion", "integration secret", f"secret_{r(ALNUM, 43)}"),
        s("Notion", "new token", f"ntn_{r(ALNUM, 46)}"),
        s("Linear", "API key", f"lin_api_{r(ALNUM, 40)}"),
        s("Figma", "token", f"figd_{r(URLSAFE, 43)}"),
        s("Postman", "API key", f"PMAK-{r(HEX, 24)}-{r(HEX, 34)}"),
        s("PostHog", "personal key", f"phx_{r(ALNUM, 47)}"),
        s("Typeform", "token", f"tfp_{r(URLSAFE, 44)}_{r(ALNUM, 14)}"),
        s("Contentful", "personal token", f"CFPAT-{r(URLSAFE, 43)}"),
        s("Airtable", "personal access token", f"pat{r(ALNUM, 14)}.{r(HEX, 64)}"),
        s("Dropbox", "short-lived token", f"sl.{r(URLSAFE, 140)}"),
        s("Mapbox", "secret token", f"sk.eyJ1{r(URLSAFE, 60)}.{r(URLSAFE, 22)}"),
        s("Shippo", "live token", f"shippo_live_{r(HEX, 40)}"),
        s("Twitch", "OAuth token", f"oauth:{r(LOWER_ALNUM, 30)}"),
        s("Okta", "SSWS header", f"00{r(URLSAFE, 40)}", "Authorization: SSWS {s}"),
        s("Auth0", "client secret json", r(URLSAFE, 64), '{{"client_secret": "{s}"}}'),
        s("Zendesk", "API token env", r(ALNUM, 40), "ZENDESK_API_TOKEN={s}"),
        s("Intercom", "access token yaml", r(B64, 59) + "=", "intercom_access_token: {s}"),
        s("Algolia", "admin key", r(HEX, 32), "ALGOLIA_ADMIN_KEY={s}"),
        s(
            "Age",
            "secret key",
            "AGE-SECRET-KEY-1" + r("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L".upper(), 58),
        ),
        # generic shapes
        s("JWT", "bearer header", _jwt(), "Authorization: Bearer {s}"),
        s("JWT", "in free text", _jwt()),
        s("HTTP", "basic auth header", r(B64, 32) + "==", "Authorization: Basic {s}"),
        s("HTTP", "cookie header", f"session={r(URLSAFE, 40)}", "Cookie: {s}"),
        s(
            "HTTP",
            "API key in query string",
            r(ALNUM, 32),
            "GET /v1/search?q=cats&api_key={s}&page=2",
        ),
        s(
            "HTTP",
            "access_token in query",
            r(URLSAFE, 40),
            "https://graph.example/me?access_token={s}",
        ),
        s(
            "SSH",
            "OpenSSH private key",
            r(B64, 200),
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{s}\n-----END OPENSSH PRIVATE KEY-----",
        ),
        s(
            "RSA",
            "PEM private key",
            r(B64, 200),
            "-----BEGIN RSA PRIVATE KEY-----\n{s}\n-----END RSA PRIVATE KEY-----",
        ),
        s(
            "PGP",
            "private key block",
            r(B64, 200),
            "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n{s}\n-----END PGP PRIVATE KEY BLOCK-----",
        ),
        # DSNs and connection strings
        s("PostgreSQL", "DSN", r(ALNUM, 16), "postgres://app:{s}@db.internal:5432/app"),
        s("MySQL", "DSN", r(ALNUM, 16), "mysql://root:{s}@127.0.0.1:3306/shop"),
        s(
            "MongoDB",
            "SRV DSN",
            r(ALNUM, 16),
            "mongodb+srv://svc:{s}@cluster0.abcde.mongodb.net/db",
        ),
        s("Redis", "URL with empty user", r(ALNUM, 16), "redis://:{s}@cache:6379/0"),
        s("RabbitMQ", "AMQP URL", r(ALNUM, 16), "amqps://guest:{s}@mq.internal/vhost"),
        s(
            "SQL Server",
            "ADO.NET connection string",
            r(ALNUM, 16),
            "Server=tcp:db.example,1433;Database=app;User ID=sa;Password={s};Encrypt=True;",
        ),
        s("Generic", "DATABASE_URL env", r(ALNUM, 16), "DATABASE_URL=postgresql://u:{s}@h/db"),
        # command lines
        s("MySQL", "password on command line", r(ALNUM, 12), "mysql -h db -u root -p{s} shop"),
        s("CLI", "--password flag", r(ALNUM, 12), "psql-tool --user admin --password {s} --db x"),
        s("CLI", "--token= flag", r(ALNUM, 24), "deploy --token={s} --env prod"),
        s("sshpass", "password flag", r(ALNUM, 12), "sshpass -p {s} ssh deploy@host"),
        s("netrc", "machine entry", r(ALNUM, 12), "machine api.example login bot password {s}"),
        s("Generic", "password assignment", r(ALNUM, 12), 'db_password: "{s}"'),
        s(
            "Generic",
            "passphrase with spaces",
            "correct horse battery staple",
            "GPG_PASSPHRASE='{s}'",
        ),
        s("Generic", "client secret kv", r(ALNUM, 30), "client-secret={s}"),
    ]
    return out


SHAPES: list[Shape] = _shapes()

# Strings that look technical but hold no secret: they must come through unchanged.
NEAR_MISSES: list[str] = [
    "input_tokens=1234 output_tokens=567 total_tokens=1801",
    '{"max_tokens": 4096, "max_completion_tokens": 512, "token_count": 17}',
    "usage: prompt_tokens: 812, completion_tokens: 95",
    "trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7",
    "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "request id req_011CSHoEeqs5C35K2UUqR7Fy",
    "call_abc123XYZ toolu_01A09q90qw90lq917835lq9 chatcmpl-AbCdEf0123456789",
    "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "commit 9cb4b7a2f1e4c0d8b6a5f3e2d1c0b9a8f7e6d5c4",
    "md5 d41d8cd98f00b204e9800998ecf8427e",
    "uuid 123e4567-e89b-12d3-a456-426614174000",
    "model gpt-4o-2024-08-06 via claude-3-5-sonnet-20241022 and gemini-1.5-pro-002",
    "models: o1-mini, text-embedding-3-large, mistral-large-latest",
    "order 1234567890 shipped on 2026-12-04T16:25:05Z",
    "the primary key: customer_id, sort key: created_at",
    "keyboard shortcuts: press the key marked Esc",
    "password reset link sent to the user",
    "tokenizer: cl100k_base; tokens per second: 87.5",
    "see https://docs.example.com/guide?page=2&lang=en#section",
    "https://api.example.com/v1/users/42/orders?limit=10&offset=20",
    "git@github.com:acme/app.git",
    "version 1.2.3-rc.1+build.5",
    "ISBN 978-3-16-148410-0",
    "file /home/app/data/report-2026.csv is 1,048,576 bytes",
    "temperature=0.7 top_p=0.9 seed=42",
    "Note: the secret of good soup is patience",
    "status: ok, latency_ms: 231, retries: 0",
    "span_id=00f067aa0ba902b7 parent_span_id=53995c3f42cd8ad8",
    "cost_usd=0.0042 price per 1M tokens: 2.50",
    "base64 payload aGVsbG8gd29ybGQ=",
]
