"""The summarizer settings (``summarizer`` and ``summarizer_*`` in :mod:`._config`): which ones go
together, and the one summarizer they describe.

- ``summarizer``: ``heuristic`` (the default: no model, deterministic) or ``dspy`` (a language
  model through DSPy writes the summary lists; needs the ``dspy`` extra). With ``dspy`` the
  heuristic summarizer still writes each summary the model cannot (budget spent, an error, a
  timeout) and the summary's metadata says why.
- ``summarizer_model``: the DSPy/LiteLLM model, ``provider/name`` (``openai/gpt-4o-mini``,
  ``ollama_chat/llama3``); required by ``dspy``.
- ``summarizer_url``: the model server's base URL (None: the provider's default).
- ``summarizer_api_key_env``: the name of the environment variable holding the API key (None:
  none, or the provider's own variable); the key itself is never a setting.
- ``summarizer_calls_per_hour`` (default 60) and ``summarizer_timeout`` (seconds a call may take,
  default 30).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from .._core._privacy import Privacy
from .._memory._generation_cache import GenerationCache
from .._ports._summarizer import Summarizer
from .._scribe._summary import HeuristicSummarizer

if TYPE_CHECKING:
    from ._config import AppConfig

__all__ = [
    "SUMMARIZERS",
    "configured_summarizer",
    "is_model_name",
    "summarizer_problem",
]

#: The summarizers ``summarizer`` may name.
SUMMARIZERS: Final = ("heuristic", "dspy")
_MODEL: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}/\S{1,200}")


def is_model_name(v: str) -> bool:
    """Whether ``v`` is a ``provider/name`` model string."""
    return _MODEL.fullmatch(v) is not None


def summarizer_problem(config: AppConfig) -> tuple[str, str] | None:
    """``(key, message)`` of the summarizer setting that does not fit the others (None: all fit)."""
    if config.summarizer == "dspy" and config.summarizer_model is None:
        return "summarizer_model", "summarizer 'dspy' needs 'summarizer_model' (provider/name)"
    return None


def configured_summarizer(
    config: AppConfig, cache: GenerationCache, privacy: Privacy
) -> Summarizer:
    """The summarizer ``config`` names (no model is called yet).

    Args:
        config: the settings.
        cache: the generation cache the model's answers go through.
        privacy: what scrubs what is sent to the model and what it answers.

    Raises:
        ConfigError: ``dspy`` without the ``dspy`` extra installed, or the API key variable
            named is not set.
    """
    if config.summarizer == "heuristic":
        return HeuristicSummarizer()
    from ._config_setting import ConfigError

    key = config.summarizer_api_key()
    try:
        import dspy

        from adapters.dspy import DSPySummarizer
    except ImportError as exc:
        raise ConfigError(
            "summarizer",
            "config",
            f"summarizer 'dspy' needs the dspy extra (pip install 'scribe-engine[dspy]'): {exc}",
        ) from None
    lm = dspy.LM(
        config.summarizer_model,
        api_base=config.summarizer_url,
        api_key=key,
        timeout=config.summarizer_timeout,
        num_retries=0,  # one call is one call of the budget
        cache=False,  # the generation cache is the cache
    )
    return DSPySummarizer(
        lm,
        cache,
        calls_per_hour=config.summarizer_calls_per_hour,
        timeout=config.summarizer_timeout,
        privacy=privacy,
    )
