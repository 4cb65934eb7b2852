"""Secret redaction: each default pattern on realistic samples, the near misses it must leave, whole
documents (an .env file, a service-account key, cloud CLI output, shell commands), and long hostile
inputs.

Every sample is made up here from the vendor's published format (the prefixes, lengths and
alphabets listed in ``engine/_core/_secrets.py``), from a seeded random generator: none is a key
anyone ever issued.
"""

from __future__ import annotations

import base64
import json
import random
import string
import uuid

import pytest

import engine
from engine import DEFAULT_SECRET_PATTERNS, redact_secrets

_rng = random.Random(12)
ALNUM = string.ascii_letters + string.digits
B64 = ALNUM + "+/"
URLSAFE = ALNUM + "-_"


def rand(n: int, alphabet: str = ALNUM) -> str:
    """``n`` random characters with at least one digit (as any real random token has)."""
    s = "".join(_rng.choice(alphabet) for _ in range(n - 1))
    return s + _rng.choice(string.digits)


def b64url(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


AWS_ID = "AKIA" + "".join(_rng.choice(string.ascii_uppercase + string.digits) for _ in range(16))
AWS_SECRET = rand(40, B64)
GHP = "ghp_" + rand(36)
GHO = "gho_" + rand(36)
GHS = "ghs_" + rand(36)
GH_PAT = "github_pat_" + rand(22) + "_" + rand(59)
GLPAT = "glpat-" + rand(20, URLSAFE)
SLACK_BOT = f"xoxb-{rand(11, string.digits)}-{rand(12, string.digits)}-{rand(24)}"
SLACK_USER = f"xoxp-{rand(11, string.digits)}-{rand(12, string.digits)}-{rand(32)}"
SLACK_HOOK_PATH = f"T{rand(10).upper()}/B{rand(10).upper()}/{rand(24)}"
STRIPE_LIVE = "sk_live_" + rand(99)
STRIPE_TEST = "sk_test_" + rand(24)
STRIPE_WEBHOOK = "whsec_" + rand(32)
OPENAI_LEGACY = "sk-" + rand(20) + "T3BlbkFJ" + rand(20)
OPENAI_PROJ = "sk-proj-" + rand(156, URLSAFE)
ANTHROPIC = "sk-ant-api03-" + rand(93, URLSAFE) + "AA"
GOOGLE = "AIza" + rand(35, URLSAFE)
GOCSPX = "GOCSPX-" + rand(28, URLSAFE)
YA29 = "ya29." + rand(150, URLSAFE)
HF = "hf_" + rand(34)
NPM = "npm_" + rand(36)
PYPI = "pypi-AgEIcHlwaS5vcmc" + rand(150, URLSAFE)
SENDGRID = f"SG.{rand(22, URLSAFE)}.{rand(43, URLSAFE)}"
JWT = ".".join(
    [
        b64url({"alg": "HS256", "typ": "JWT"}),
        b64url({"sub": "1234567890", "name": "Ada", "iat": 1516239022}),
        rand(43, URLSAFE),
    ]
)
PEM_BODY = "\n".join(rand(64, B64) for _ in range(25)) + "\n" + rand(20, B64) + "=="
RSA_KEY = f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----"
ENCRYPTED_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
    f"DEK-Info: AES-128-CBC,{rand(32, '0123456789ABCDEF')}\n\n{PEM_BODY}\n"
    "-----END RSA PRIVATE KEY-----"
)
OPENSSH_KEY = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{PEM_BODY}\n-----END OPENSSH PRIVATE KEY-----"
PGP_KEY = (
    "-----BEGIN PGP PRIVATE KEY BLOCK-----\nComment: made up\n\n"
    f"{PEM_BODY}\n=ab12\n-----END PGP PRIVATE KEY BLOCK-----"
)
PASSWORD = "c0rrect-h0rse!" + rand(6)
BASIC = base64.b64encode(f"ada:{PASSWORD}".encode()).decode()

# (pattern name, text, the text redacted)
CASES = [
    ("private-key", f"key:\n{RSA_KEY}\nthat was it", "key:\n[redacted:private-key]\nthat was it"),
    ("private-key", f"{ENCRYPTED_KEY}\n", "[redacted:private-key]\n"),
    ("private-key", f"cat id_ed25519\n{OPENSSH_KEY}", "cat id_ed25519\n[redacted:private-key]"),
    ("private-key", PGP_KEY, "[redacted:private-key]"),
    (
        "private-key",
        json.dumps(
            {"private_key": f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\n-----END PRIVATE KEY-----\n"}
        ),
        '{"private_key": "[redacted:private-key]\\n"}',
    ),
    # cut short (a bounded excerpt): redacted as far as it goes
    ("private-key", f"{RSA_KEY[:300]}… (truncated)", "[redacted:private-key]… (truncated)"),
    (
        "aws-access-key-id",
        f"aws_access_key_id = {AWS_ID}",
        "aws_access_key_id = [redacted:aws-access-key-id]",
    ),
    (
        "aws-secret-access-key",
        f"aws_secret_access_key = {AWS_SECRET}",
        "aws_secret_access_key = [redacted:aws-secret-access-key]",
    ),
    (
        "aws-secret-access-key",
        f'"SecretAccessKey": "{AWS_SECRET}",',
        '"SecretAccessKey": "[redacted:aws-secret-access-key]",',
    ),
    (
        "github-token",
        f"git clone https://{GHP}@github.com/o/r",
        "git clone https://[redacted:github-token]@github.com/o/r",
    ),
    (
        "github-token",
        f"token {GHO} and {GHS}.",
        "token [redacted:github-token] and [redacted:github-token].",
    ),
    ("github-token", f"GH_TOKEN={GH_PAT}", "GH_TOKEN=[redacted:github-token]"),
    ("gitlab-token", f"PRIVATE-TOKEN: {GLPAT}", "PRIVATE-TOKEN: [redacted:gitlab-token]"),
    (
        "slack-token",
        f"SLACK_BOT={SLACK_BOT} {SLACK_USER}",
        "SLACK_BOT=[redacted:slack-token] [redacted:slack-token]",
    ),
    (
        "slack-webhook",
        f"curl -X POST https://hooks.slack.com/services/{SLACK_HOOK_PATH} -d @m.json",
        "curl -X POST https://hooks.slack.com/services/[redacted:slack-webhook] -d @m.json",
    ),
    ("stripe-key", f"stripe.api_key = '{STRIPE_LIVE}'", "stripe.api_key = '[redacted:stripe-key]'"),
    (
        "stripe-key",
        f"{STRIPE_TEST}, {STRIPE_WEBHOOK}",
        "[redacted:stripe-key], [redacted:stripe-key]",
    ),
    ("anthropic-key", f"x-api-key: {ANTHROPIC}", "x-api-key: [redacted:anthropic-key]"),
    ("openai-key", f"OPENAI_API_KEY={OPENAI_PROJ}", "OPENAI_API_KEY=[redacted:openai-key]"),
    (
        "openai-key",
        f'client = OpenAI(api_key="{OPENAI_LEGACY}")',
        'client = OpenAI(api_key="[redacted:openai-key]")',
    ),
    ("google-api-key", f"?key={GOOGLE}&q=x", "?key=[redacted:google-api-key]&q=x"),
    ("google-oauth", f'"client_secret": "{GOCSPX}"', '"client_secret": "[redacted:google-oauth]"'),
    ("google-oauth", f"access {YA29}", "access [redacted:google-oauth]"),
    (
        "huggingface-token",
        f"huggingface-cli login --token {HF}",
        "huggingface-cli login --token [redacted:huggingface-token]",
    ),
    (
        "npm-token",
        f"//registry.npmjs.org/:_authToken={NPM}",
        "//registry.npmjs.org/:_authToken=[redacted:npm-token]",
    ),
    ("pypi-token", f"password = {PYPI}", "password = [redacted:pypi-token]"),
    ("sendgrid-key", f"SENDGRID={SENDGRID}", "SENDGRID=[redacted:sendgrid-key]"),
    ("jwt", f"cookie: session={JWT}; Path=/", "cookie: session=[redacted:jwt]; Path=/"),
    (
        "authorization",
        f"Authorization: Basic {BASIC}",
        "Authorization: Basic [redacted:authorization]",
    ),
    (
        "authorization",
        f"curl -H 'Authorization: token {rand(40, 'abcdef0123456789')}' https://api",
        "curl -H 'Authorization: token [redacted:authorization]' https://api",
    ),
    (
        "authorization",
        "proxy-authorization: x9Kq2mZp7w",
        "proxy-authorization: [redacted:authorization]",
    ),
    (
        "bearer-token",
        f"headers = {{'X': 'Bearer {rand(32)}'}}",
        "headers = {'X': 'Bearer [redacted:bearer-token]'}",
    ),
    (
        "url-password",
        f"DATABASE_URL=postgresql://scribe:{PASSWORD}@db.internal:5432/scribe",
        "DATABASE_URL=postgresql://scribe:[redacted:url-password]@db.internal:5432/scribe",
    ),
    (
        "url-password",
        "redis://:s3cr3t@cache:6379/0",
        "redis://:[redacted:url-password]@cache:6379/0",
    ),
    ("url-password", "amqp://u:p@ss@mq/vh", "amqp://u:[redacted:url-password]@mq/vh"),
    (
        "user-password",
        f"curl -u ada:{PASSWORD} https://x",
        "curl -u ada:[redacted:user-password] https://x",
    ),
    ("user-password", "http --user='ada:pa ss'", "http --user='ada:[redacted:user-password] ss'"),
    (
        "user-password",
        "wget --proxy-user=bob:Pa55 x",
        "wget --proxy-user=bob:[redacted:user-password] x",
    ),
    ("assignment", f"DB_PASSWORD={PASSWORD}", "DB_PASSWORD=[redacted:assignment]"),
    ("assignment", "MYSQL_PWD=abc123 mysql", "MYSQL_PWD=[redacted:assignment] mysql"),
    ("assignment", 'password = "hunter"', 'password = "[redacted:assignment]"'),
    ("assignment", "password: 'it''s'", "password: '[redacted:assignment]''s'"),
    (
        "assignment",
        f'{{"password": "{PASSWORD}", "user": "ada"}}',
        '{"password": "[redacted:assignment]", "user": "ada"}',
    ),
    (
        "assignment",
        f'{{\\"token\\": \\"{PASSWORD}\\"}}',
        '{\\"token\\": \\"[redacted:assignment]\\"}',
    ),
    (
        "assignment",
        "secret_key_base: 9f86d081884c7d659a2feaa0c55ad015",
        "secret_key_base: [redacted:assignment]",
    ),
    ("assignment", "$client_secret := 'abc'", "$client_secret := '[redacted:assignment]'"),
    ("assignment", "'api_key' => 'k-123'", "'api_key' => '[redacted:assignment]'"),
    ("assignment", "mysql --password=Tr0ub4dor&3 db", "mysql --password=[redacted:assignment] db"),
    ("assignment", 'SECRET = "unterminated', 'SECRET = "[redacted:assignment]'),
    ("assignment", "The password: hunter2, then", "The password: [redacted:assignment], then"),
]


@pytest.mark.parametrize(
    ("name", "text", "expected"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_each_pattern_redacts_its_secret_and_keeps_the_rest(
    name: str, text: str, expected: str
) -> None:
    assert redact_secrets(text) == expected
    assert f"[redacted:{name}]" in expected
    assert redact_secrets(expected) == expected


def test_every_default_pattern_has_a_case_and_a_unique_name() -> None:
    names = [p.name for p in DEFAULT_SECRET_PATTERNS]
    assert len(names) == len(set(names))
    assert set(names) == {c[0] for c in CASES}


NEAR_MISSES = [
    "commit 3f2a9c1e0b7d4a5f6e8c9b0a1d2e3f4a5b6c7d8e fixes the parser",
    f"request id {uuid.UUID(int=_rng.getrandbits(128))}",
    "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "pip install scikit-learn; from sk-learn import x; a task-list, risk-free",
    "ghp_short and AKIA1234 and akiaabcdefghijklmnop and AIzaTooShort",
    "password = get_password()",
    "def login(user: str, password: str) -> Token:",
    "token: str | None = None",
    "secret=None, token=True",
    'api_key = os.environ["API_KEY"]',
    "token = self.token",
    'password = ""',
    "max_tokens = 4096; tokenizer = AutoTokenizer.from_pretrained('bert')",
    "tokens_used: 1200 and token_type: bearer",
    "export TOKEN=$GITHUB_TOKEN PASSWORD=${DB_PASSWORD}",
    'curl -H "Authorization: Bearer $TOKEN" https://api.example.com',
    "authorization: str | None = Header(None)",
    'Connect with `Authorization: Bearer <token>` or f"Authorization: Bearer {token}"',
    'url = "/?token=" + "A" * 43; ok = link.startswith(base + "?token=") and fresh',
    'feed.token(token_id="shared")',
    "Bearer tokens are described in RFC 6750.",
    "The password must be at least 12 characters long.",
    "https://github.com/org/repo, http://localhost:8080/path?a=b, ssh://git@host/r.git",
    "git@github.com:org/repo.git and mailto:ada@example.com",
    "git push -u origin main; docker run -u 1000:1000 img; cd $PWD; PWD=/home/ada",
    "pk_live_" + rand(24) + " is publishable",
    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + rand(43, B64) + " ada@laptop",
    "data:image/png;base64,"
    + base64.b64encode(bytes(_rng.getrandbits(8) for _ in range(300))).decode(),
    "eyJhbGciOi is a prefix, not a token",
    'see keys.json: {"key": "value"}',
]


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_ordinary_prose_and_code_stay_as_they_are(text: str) -> None:
    assert redact_secrets(text) == text


def test_a_whole_env_file_keeps_its_names_and_loses_its_values() -> None:
    env = "\n".join(
        [
            "# local settings",
            "DEBUG=true",
            f"AWS_ACCESS_KEY_ID={AWS_ID}",
            f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}",
            f"GITHUB_TOKEN={GHP}",
            f"STRIPE_SECRET_KEY={STRIPE_LIVE}",
            f"DATABASE_URL=postgres://app:{PASSWORD}@localhost/app",
            f"SESSION_SECRET={rand(64, 'abcdef0123456789')}",
            "PORT=8080",
        ]
    )
    out = redact_secrets(env)
    assert out.splitlines() == [
        "# local settings",
        "DEBUG=true",
        "AWS_ACCESS_KEY_ID=[redacted:aws-access-key-id]",
        "AWS_SECRET_ACCESS_KEY=[redacted:aws-secret-access-key]",
        "GITHUB_TOKEN=[redacted:github-token]",
        "STRIPE_SECRET_KEY=[redacted:stripe-key]",
        "DATABASE_URL=postgres://app:[redacted:url-password]@localhost/app",
        "SESSION_SECRET=[redacted:assignment]",
        "PORT=8080",
    ]


def test_a_service_account_key_file_and_cloud_cli_output() -> None:
    account = {
        "type": "service_account",
        "project_id": "demo-123",
        "private_key_id": rand(40, "abcdef0123456789"),
        "private_key": f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\n-----END PRIVATE KEY-----\n",
        "client_email": "bot@demo-123.iam.gserviceaccount.com",
    }
    sts = {
        "Credentials": {
            "AccessKeyId": "ASIA" + AWS_ID[4:],
            "SecretAccessKey": AWS_SECRET,
            "SessionToken": rand(300, B64) + "==",
            "Expiration": "2026-12-02T07:00:00Z",
        }
    }
    for document, secrets in (
        (json.dumps(account, indent=2), [PEM_BODY[:64], PEM_BODY[-30:]]),
        (json.dumps(sts), [AWS_SECRET, sts["Credentials"]["SessionToken"][:40], AWS_ID[4:]]),
    ):
        out = redact_secrets(document)
        assert json.loads(out).keys() == json.loads(document).keys()
        for secret in secrets:
            assert secret not in out
    # what identifies the key, not what opens it, stays
    kept = redact_secrets(json.dumps(account))
    assert "bot@demo-123.iam.gserviceaccount.com" in kept and account["private_key_id"] in kept


def test_secrets_inside_a_tool_call_are_found() -> None:
    command = (
        f"curl -s -u ada:{PASSWORD} -H 'Authorization: Bearer {JWT}' "
        f"https://ada:{PASSWORD}@api.example.com/v1 && export ANTHROPIC_API_KEY={ANTHROPIC}"
    )
    out = redact_secrets(command)
    for secret in (JWT, ANTHROPIC, PASSWORD):
        assert secret not in out
    assert out == (
        "curl -s -u ada:[redacted:user-password] -H 'Authorization: Bearer [redacted:jwt]' "
        "https://ada:[redacted:url-password]@api.example.com/v1 "
        "&& export ANTHROPIC_API_KEY=[redacted:anthropic-key]"
    )


#: Inputs that make a backtracking pattern take quadratic or exponential time; a linear one takes
#: milliseconds. Sizes are such that a quadratic pattern would run for minutes (the test timeout).
N = 200_000
HOSTILE = {
    "letters": "a" * N,
    "begin": "-----BEGIN PRIVATE KEY-----" * (N // 27),
    "key-headers": "-----BEGIN PRIVATE KEY-----\n" + "A-" * (N // 2),
    "key-newlines": "-----BEGIN PRIVATE KEY-----" + "\\n" * N,
    "prefixes": "ghp_sk-xoxb-AIzaAKIAeyJSG.hf_npm_" * (N // 32),
    "openai": "sk-" * (N // 3),
    "long-openai": "sk-" + "a" * N,
    "url": "://a:" * (N // 5),
    "url-no-at": "://" + "a" * N + ":" + "b" * N,
    "assignments": "password=" * (N // 9),
    "escapes": 'password="' + "\\" * N,
    "dotted": "password=" + "a." * N,
    "keywords": "secret_key_key_key" * (N // 18),
    "jwt": ("eyJ" + "a" * 20 + ".") * (N // 24),
    "bearer": "Bearer " * (N // 7),
    "authorization": "Authorization: " * (N // 15),
    "mixed-quotes": "token='\"" * (N // 8),
    "curl-user": "-u a:" * (N // 5),
    "curl-digits": "-u a:" + "1" * N,
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_long_hostile_inputs_are_redacted_in_linear_time(name: str) -> None:
    text = HOSTILE[name]
    out = redact_secrets(text)
    assert redact_secrets(out) == out
    assert len(out) <= len(text) + len("[redacted:aws-secret-access-key]") * (len(text) // 3)


def test_a_custom_pattern_list_is_applied_in_order() -> None:
    only = tuple(p for p in DEFAULT_SECRET_PATTERNS if p.name == "assignment")
    assert redact_secrets(f"GITHUB_TOKEN={GHP}", only) == "GITHUB_TOKEN=[redacted:assignment]"
    assert redact_secrets(f"GITHUB_TOKEN={GHP}", ()) == f"GITHUB_TOKEN={GHP}"
    ticket = engine.SecretPattern.of("ticket", r"\bTCK-(?P<secret>[0-9]{6})\b", ("tck-",))
    assert redact_secrets("see TCK-123456", (ticket,)) == "see TCK-[redacted:ticket]"
