"""Choosing the summarizer: the settings, their checks, and the summarizer the stack builds."""

from __future__ import annotations

from pathlib import Path

import pytest

import engine
import engine.testing
from adapters.dspy import DSPySummarizer
from engine.app import AppConfig, ConfigError, load_config, open_stack
from engine.app._summarizer_settings import configured_summarizer

DSPY = {"summarizer": "dspy", "summarizer_model": "ollama_chat/llama3"}


def test_the_heuristic_summarizer_is_the_default(tmp_path: Path) -> None:
    config = AppConfig(home=tmp_path)
    assert config.summarizer == "heuristic" and config.summarizer_model is None
    assert (config.summarizer_calls_per_hour, config.summarizer_timeout) == (60, 30.0)
    cache = engine.GenerationCache(engine.testing.InMemoryGenerationStore())
    chosen = configured_summarizer(config, cache, config.privacy())
    assert isinstance(chosen, engine.HeuristicSummarizer)


def test_the_file_and_the_environment_choose_the_dspy_summarizer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        'summarizer = "dspy"\nsummarizer_model = "openai/gpt-4o-mini"\n'
        'summarizer_url = "http://127.0.0.1:11434/v1"\nsummarizer_api_key_env = "MY_LLM_KEY"\n'
        "summarizer_calls_per_hour = 12\n"
    )
    env = {"SCRIBE_HOME": str(tmp_path / "home"), "SCRIBE_SUMMARIZER_TIMEOUT": "7.5"}
    config = load_config(config_file=cfg, environ=env)
    assert config.summarizer == "dspy" and config.summarizer_timeout == 7.5
    with pytest.raises(ConfigError, match="MY_LLM_KEY") as caught:
        config.summarizer_api_key({})
    assert caught.value.key == "summarizer_api_key_env"
    assert config.summarizer_api_key({"MY_LLM_KEY": "k-123"}) == "k-123"
    monkeypatch.setenv("MY_LLM_KEY", "k-456")
    cache = engine.GenerationCache(engine.testing.InMemoryGenerationStore())
    chosen = configured_summarizer(config, cache, config.privacy())
    assert isinstance(chosen, DSPySummarizer) and chosen.model == "openai/gpt-4o-mini"
    assert chosen.statistics().budget.calls_per_hour == 12
    lm = chosen.lm
    assert lm.model == "openai/gpt-4o-mini" and lm.cache is False and lm.num_retries == 0
    assert lm.kwargs["api_base"] == "http://127.0.0.1:11434/v1"
    assert lm.kwargs["api_key"] == "k-456" and lm.kwargs["timeout"] == 7.5
    # the key is read when the summarizer is built, never kept in the settings
    assert "k-456" not in repr(config)


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"summarizer": "llm"}, "summarizer"),
        ({"summarizer": "dspy"}, "summarizer_model"),
        ({**DSPY, "summarizer_model": "gpt-4o-mini"}, "summarizer_model"),
        ({**DSPY, "summarizer_model": "openai/gpt 4o"}, "summarizer_model"),
        ({**DSPY, "summarizer_url": "ftp://models.example"}, "summarizer_url"),
        ({**DSPY, "summarizer_url": "http://"}, "summarizer_url"),
        ({**DSPY, "summarizer_api_key_env": "sk-proj-abc123"}, "summarizer_api_key_env"),
        ({**DSPY, "summarizer_calls_per_hour": 0}, "summarizer_calls_per_hour"),
        ({**DSPY, "summarizer_calls_per_hour": True}, "summarizer_calls_per_hour"),
        ({**DSPY, "summarizer_timeout": 0}, "summarizer_timeout"),
        ({**DSPY, "summarizer_timeout": 601.0}, "summarizer_timeout"),
    ],
)
def test_bad_summarizer_settings_are_refused(
    tmp_path: Path, settings: dict[str, object], key: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(settings, environ={"SCRIBE_HOME": str(tmp_path)})
    assert caught.value.key == key and key in str(caught.value)


def test_a_bad_summarizer_in_the_environment_names_the_variable(tmp_path: Path) -> None:
    env = {"SCRIBE_HOME": str(tmp_path), "SCRIBE_SUMMARIZER_CALLS_PER_HOUR": "many"}
    with pytest.raises(ConfigError, match="SCRIBE_SUMMARIZER_CALLS_PER_HOUR"):
        load_config(environ=env)


async def test_the_stack_summarizes_with_the_configured_summarizer(
    pg_url: str, tmp_path: Path
) -> None:
    config = AppConfig(
        home=tmp_path,
        database_url=pg_url,
        feed=False,
        summarizer="dspy",
        summarizer_model="ollama_chat/llama3",
    )
    async with open_stack(config) as stack:
        chosen = stack.pipeline.summarizer
        assert isinstance(chosen, DSPySummarizer) and chosen.model == "ollama_chat/llama3"
    async with open_stack(AppConfig(home=tmp_path, database_url=pg_url, feed=False)) as stack:
        assert isinstance(stack.pipeline.summarizer, engine.HeuristicSummarizer)
