"""Likely secrets found in text and replaced by ``[redacted:<name>]``: the kept list of patterns.
Imports no trio and does no I/O.

:data:`DEFAULT_SECRET_PATTERNS` is the list, in the order it is applied (the most specific first, so
a GitHub token in ``GITHUB_TOKEN=ghp_...`` is named ``github-token``, not ``assignment``). The token
formats follow each vendor's published format and the rules of gitleaks
(https://github.com/gitleaks/gitleaks, ``config/gitleaks.toml``), loosened in length where vendors
have changed them:

============================  ==================================================================
name                          what is redacted
============================  ==================================================================
``private-key``               a PEM/OpenSSH/PGP private key: ``-----BEGIN ... PRIVATE KEY-----``,
                              its headers and body (also with literal ``\\n`` as in a JSON file),
                              and its END line; a key cut short is redacted as far as it goes
``aws-access-key-id``         ``AKIA``/``ASIA``/``ABIA``/``ACCA``/``A3T?`` and 16 more characters
``aws-secret-access-key``     the 40-character value of ``aws_secret_access_key = ...`` or
                              ``"SecretAccessKey": "..."`` (the key name stays)
``github-token``              ``ghp_``, ``gho_``, ``ghu_``, ``ghs_``, ``ghr_`` and ``github_pat_``
``gitlab-token``              ``glpat-``, ``gldt-``, ``glrt-``, ``glptt-``, ``glcbt-``, ... tokens
``slack-token``               ``xoxb-``, ``xoxp-``, ``xoxa-``, ``xoxr-``, ``xoxs-``, ``xoxe-``, ``xapp-``
``slack-webhook``             the path of ``https://hooks.slack.com/services/...``
``stripe-key``                ``sk_live_``, ``sk_test_``, ``rk_live_``, ``rk_test_``, ``whsec_``
``anthropic-key``             ``sk-ant-...``
``openai-key``                ``sk-...``, ``sk-proj-...``, ``sk-svcacct-...`` with a digit in it
``google-api-key``            ``AIza`` and 35 more characters
``google-oauth``              ``GOCSPX-`` client secrets and ``ya29.`` access tokens
``huggingface-token``         ``hf_`` and 34 or more letters and digits
``npm-token``                 ``npm_`` and 36 letters and digits
``pypi-token``                ``pypi-AgEIcHlwaS5vcmc...`` (a PyPI API token macaroon)
``sendgrid-key``              ``SG.<22>.<43>``
``jwt``                       ``eyJ<header>.eyJ<payload>.<signature>``
``authorization``             the credentials of an ``Authorization:``/``Proxy-Authorization:``
                              header (the scheme, ``Bearer`` or ``Basic``, stays)
``bearer-token``              the token after ``Bearer `` anywhere else (when it has a digit)
``url-password``              the password of ``scheme://user:password@host`` (the user stays)
``user-password``             the password of ``-u user:password`` and ``--user user:password``
                              (curl, wget, httpie; a numeric ``-u 1000:1000`` stays)
``assignment``                the value of ``password``/``passwd``/``_pwd``/``passphrase``/``secret``/
                              ``token``/``credential(s)``/``api_key``/``access_key``/
                              ``private_key``/``client_key``/... assigned with ``=``, ``:``,
                              ``:=`` or ``=>`` (``DB_PASSWORD=...``, ``"token": "..."``,
                              ``secret: ...``); the key name stays
============================  ==================================================================

What is left alone, on purpose: git SHAs, UUIDs, hashes and other hex, base64 that no key name or
prefix marks, public keys (``-----BEGIN PUBLIC KEY-----``, ``ssh-ed25519 AAAA...``), Stripe's
publishable ``pk_`` keys, words such as ``task-list`` or ``sk-learn``, and in assignments a value
that reads as code rather than as a secret: a quoted empty string, an unquoted name made of letters,
dots and underscores only (``password = get_password()``, ``token: str``, ``secret=None``,
``api_key = os.environ[...]``, ``token = self.token``), an environment reference (``$TOKEN``,
``${DB_PASSWORD}``), a placeholder (``Bearer <token>``, ``Bearer {token}``), the code between two
string literals (``"?token=" + value``: a "quoted value" starting with a space or closing
punctuation) and ``token_id``-style names. An unquoted password made of letters only (``PASSWORD=hunter``) is therefore not
redacted; a quoted one is.

Every pattern runs in linear time: no quantifier is nested in another over the same characters
unless both are possessive (``*+``, Python 3.11), repeats of a class are bounded or possessive, and
each pattern is tried only when one of its lowercase ``hints`` occurs in the text.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Final

from ._errors import InvalidArgumentError

__all__ = ["DEFAULT_SECRET_PATTERNS", "REDACTED_PREFIX", "SecretPattern", "redact_secrets"]

#: What every redaction starts with: ``[redacted:<pattern name>]`` replaces the secret.
REDACTED_PREFIX: Final = "[redacted:"

_NAME: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")


@dataclass(frozen=True, slots=True)
class SecretPattern:
    """One kind of secret: its name (in the ``[redacted:<name>]`` marker) and how to find it.

    The text replaced is the first group whose name starts with ``secret`` that took part in the
    match (so a key name or a header scheme around it stays), or the whole match when there is none.

    Args:
        name: lowercase letters, digits and inner dashes, at most 40 characters.
        regex: the compiled pattern; it must not match its own marker (a value starting with
            ``[redacted:``), so redacting twice changes nothing. Only the owner's configuration
            supplies patterns: one that backtracks badly makes redaction slow, never wrong.
        hints: lowercase strings of which one occurs in every match; the pattern is skipped on
            text holding none of them. Empty: always tried.

    Raises:
        InvalidArgumentError: a malformed name or an uppercase hint.
    """

    name: str
    regex: re.Pattern[str]
    hints: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or _NAME.fullmatch(self.name) is None:
            raise InvalidArgumentError(f"a secret pattern's name must match {_NAME.pattern}")
        if not isinstance(self.regex, re.Pattern) or not isinstance(self.regex.pattern, str):
            raise InvalidArgumentError(
                f"secret pattern {self.name}: regex must be a str re.Pattern"
            )
        if any(not isinstance(h, str) or not h or h != h.lower() for h in self.hints):
            raise InvalidArgumentError(f"secret pattern {self.name}: hints must be lowercase")

    @classmethod
    def of(cls, name: str, regex: str, hints: tuple[str, ...] = ()) -> SecretPattern:
        """A pattern from a regular expression's text (a configuration's ``extra_patterns``).

        Raises:
            InvalidArgumentError: ``regex`` does not compile, or as the constructor.
        """
        try:
            compiled = re.compile(regex)
        except re.error as exc:
            raise InvalidArgumentError(f"secret pattern {name}: {exc}") from None
        return cls(name, compiled, tuple(hints))


def _p(name: str, regex: str, *hints: str) -> SecretPattern:
    return SecretPattern(name, re.compile(regex), hints)


# A value that is not a marker already (redacting twice changes nothing).
_FRESH: Final = r"(?!\[redacted:)"
# Characters of a token (base64, base64url, dots).
_TOK: Final = r"A-Za-z0-9_\-"
# What ends an unquoted assignment value, and what, found in it before any of these or the end,
# makes it a secret rather than a name (a digit or a symbol other than ``.`` and ``_``).
_STOP: Final = r"\s\"'`,;(){}\[\]<>"
# An environment reference (``$TOKEN``, ``${DB_PASSWORD}``) names a secret without holding it.
_NO_ENV: Final = r"(?!\$\{?[A-Za-z_])"
_UNQUOTED: Final = (
    rf"{_FRESH}{_NO_ENV}(?=[A-Za-z_.]{{0,512}}+[^{_STOP}A-Za-z_.])[^{_STOP}]{{4,4096}}+(?!\()"
)
# A quoted "value" that starts with a space or closing punctuation is code between two string
# literals (``"?token=" + x``, ``f("?token=") and y``), not a value.
_NOT_CODE: Final = r"(?![\s),;\]}+])"
_KEYWORD: Final = (
    r"(?:passw(?:or)?d|(?<=[_\-])pwd|passphrase|secret|token|credentials?"
    r"|(?:api|access|private|secret|signing|encryption|master|client|app)[_\-]?key)"
    r"(?:[_\-.](?:key|base|value|b64|hash|access[_\-]?key)){0,2}+"
)
# After a key name: a closing quote (perhaps escaped), then ``=``, ``:``, ``:=`` or ``=>``.
_ASSIGN: Final = r"(?:\\?[\"'])?[ \t]{0,8}+(?::=|=>|[:=])[ \t]{0,8}+"

#: The patterns :func:`redact_secrets` applies by default, in order (see the module's table).
DEFAULT_SECRET_PATTERNS: Final[tuple[SecretPattern, ...]] = (
    _p(
        "private-key",
        r"-----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----"
        r"(?:(?:\s|\\[nr])*+(?:[A-Za-z][A-Za-z0-9\-]{0,40}+:[^\n\\]*+|[A-Za-z0-9+/=]++))*+"
        r"(?:(?:\s|\\[nr])*+-----END[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----)?",
        "private key",
    ),
    _p(
        "aws-access-key-id",
        r"\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b",
        "akia",
        "asia",
        "abia",
        "acca",
        "a3t",
    ),
    _p(
        "aws-secret-access-key",
        r"(?i:aws[_\-.]?secret[_\-.]?(?:access[_\-.]?)?key|secret[_\-]?access[_\-]?key)"
        rf"{_ASSIGN}\\?[\"']?(?P<secret>[A-Za-z0-9/+]{{40}})(?![A-Za-z0-9/+=])",
        "secret",
    ),
    _p(
        "github-token",
        r"\b(?:gh[pousr]_[A-Za-z0-9]{36,251}+|github_pat_[A-Za-z0-9_]{22,244}+)",
        "ghp_",
        "gho_",
        "ghu_",
        "ghs_",
        "ghr_",
        "github_pat_",
    ),
    _p(
        "gitlab-token",
        rf"\bgl(?:pat|dt|rt|ptt|cbt|oas|soat|ft|imt|agent|ffct)-[{_TOK}]{{20,255}}+",
        "gl",
    ),
    _p(
        "slack-token",
        r"\b(?:xox[abposre]|xapp)-[A-Za-z0-9\-]{10,250}+",
        "xox",
        "xapp-",
    ),
    _p(
        "slack-webhook",
        r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<secret>[A-Za-z0-9_/+\-]{20,250}+)",
        "hooks.slack.com",
    ),
    _p(
        "stripe-key",
        r"\b(?:(?:sk|rk)_(?:live|test|prod)_[A-Za-z0-9]{10,250}+|whsec_[A-Za-z0-9]{24,250}+)",
        "sk_",
        "rk_",
        "whsec_",
    ),
    _p("anthropic-key", rf"\bsk-ant-[{_TOK}]{{20,300}}+", "sk-ant-"),
    _p(
        "openai-key",
        rf"\bsk-(?=[A-Za-z_\-]{{0,300}}+[0-9])[{_TOK}]{{20,300}}+",
        "sk-",
    ),
    _p("google-api-key", rf"\bAIza[{_TOK}]{{35}}(?![{_TOK}])", "aiza"),
    _p(
        "google-oauth",
        rf"\b(?:GOCSPX-[{_TOK}]{{20,100}}+|ya29\.[{_TOK}]{{20,2048}}+)",
        "gocspx-",
        "ya29.",
    ),
    _p("huggingface-token", r"\bhf_[A-Za-z0-9]{34,100}+\b", "hf_"),
    _p("npm-token", r"\bnpm_[A-Za-z0-9]{36}\b", "npm_"),
    _p("pypi-token", rf"\bpypi-AgEIcHlwaS5vcmc[{_TOK}]{{50,1000}}+", "pypi-"),
    _p("sendgrid-key", rf"\bSG\.[{_TOK}]{{22}}\.[{_TOK}]{{43}}\b", "sg."),
    _p(
        "jwt",
        rf"\beyJ[{_TOK}]{{10,8192}}+\.eyJ[{_TOK}]{{10,65536}}+\.[{_TOK}]{{0,8192}}+",
        "eyj",
    ),
    _p(
        "authorization",
        r"(?i:\b(?:proxy-)?authorization)(?:\\?[\"'])?[ \t]{0,8}+[:=][ \t]{0,8}+(?:\\?[\"'])?"
        r"(?:(?i:bearer|basic|token|digest|bot|negotiate)[ \t]{1,8}+"
        rf"(?P<secret>{_FRESH}{_NO_ENV}[^\s\"'\\<>{{}}]{{4,8192}}+)|(?P<secret2>{_UNQUOTED}))",
        "authorization",
    ),
    _p(
        "bearer-token",
        r"\b(?i:bearer)[ \t]{1,8}+"
        r"(?P<secret>(?=[A-Za-z._~+/\-]{0,300}+[0-9])[A-Za-z0-9._~+/\-]{16,8192}+=*+)",
        "bearer",
    ),
    _p(
        "url-password",
        r"://[^\s:/?#@\[\]]{0,256}+:(?P<secret>(?!\[redacted:)[^\s/?#]{1,256})@",
        "://",
    ),
    _p(
        "user-password",
        r"(?<![\w\-])(?:-u|--user|--proxy-user)(?:[ \t]{1,8}+|=)[\"']?[^\s:\"'\[\]]{1,256}+:"
        rf"(?P<secret>{_FRESH}(?![0-9]{{1,64}}+(?![^\s\"']))[^\s\"']{{1,1024}}+)",
        "-u",
        "--user",
        "--proxy-user",
    ),
    _p(
        "assignment",
        rf"(?i:{_KEYWORD}){_ASSIGN}(?:"
        rf"\\\"(?P<secret>{_FRESH}{_NOT_CODE}[^\"\\\n]{{1,4096}}+)"
        rf"|\"(?P<secret2>{_FRESH}{_NOT_CODE}(?:[^\"\\\n]++|\\.){{1,4096}}+)"
        rf"|'(?P<secret3>{_FRESH}{_NOT_CODE}(?:[^'\\\n]++|\\.){{1,4096}}+)"
        rf"|(?P<secret4>{_UNQUOTED}))",
        "pass",
        "pwd",
        "secret",
        "token",
        "credential",
        "key",
    ),
)


def _replacer(name: str, match: re.Match[str]) -> str:
    marker = f"{REDACTED_PREFIX}{name}]"
    for group, value in match.groupdict().items():
        if group.startswith("secret") and value is not None:
            start, end = match.span(group)
            whole = match.group()
            offset = match.start()
            return whole[: start - offset] + marker + whole[end - offset :]
    return marker


def redact_secrets(text: str, patterns: tuple[SecretPattern, ...] = DEFAULT_SECRET_PATTERNS) -> str:
    """``text`` with every match of ``patterns`` replaced by ``[redacted:<name>]``, in their order.

    A pattern is tried only if one of its hints occurs in the text (in lowercase), so text that
    looks like no secret costs one ``lower()`` and a substring test per hint. Redacting twice gives
    the text redacting once gave.

    Args:
        text: what to redact.
        patterns: which patterns, in order (default :data:`DEFAULT_SECRET_PATTERNS`).
    """
    lowered = text.lower()
    for pattern in patterns:
        if pattern.hints and not any(h in lowered for h in pattern.hints):
            continue
        redacted = pattern.regex.sub(functools.partial(_replacer, pattern.name), text)
        if redacted != text:
            text = redacted
            lowered = text.lower()
    return text
