"""Choosing the embedder: the settings, their checks, the one factory, and the hashing embedder's
worker threads."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import trio

import adapters
import engine
from adapters.embedding._hashing import INLINE_TEXTS
from engine.app import AppConfig, ConfigError, load_config
from engine.app._embedder_settings import configured_embedder


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_the_default_is_wordllama(tmp_path: Path) -> None:
    config = load_config(
        environ={"SCRIBE_HOME": str(tmp_path)}, config_file=_write(tmp_path / "c.toml", "")
    )
    assert config.embedder == "wordllama"
    embedder = configured_embedder(config)
    assert isinstance(embedder, adapters.WordLlamaEmbedder)
    assert adapters.describe_embedder(embedder) == "wordllama-l2_supercat-256 (256 dims)"
    assert adapters.describe_embedder(None) == "none"


def test_an_openai_endpoint_from_the_file_and_its_key_from_the_environment(tmp_path: Path) -> None:
    cfg = _write(
        tmp_path / "c.toml",
        'embedder = "openai"\nembedder_url = "http://127.0.0.1:11434/v1"\n'
        'embedder_model = "nomic-embed-text"\nembedder_dimensions = 768\n'
        'embedder_api_key_env = "OLLAMA_KEY"\nembedder_batch_size = 32\nembedder_timeout = 5\n',
    )
    env = {"SCRIBE_HOME": str(tmp_path), "OLLAMA_KEY": "sk-local"}
    config = load_config(environ=env, config_file=cfg)
    assert config.embedder_timeout == 5.0 and config.embedder_api_key(env) == "sk-local"
    embedder = adapters.create_embedder(
        config.embedder,
        model=config.embedder_model,
        url=config.embedder_url,
        api_key=config.embedder_api_key(env),
        dimensions=config.embedder_dimensions,
        batch_size=config.embedder_batch_size,
    )
    assert isinstance(embedder, adapters.OpenAIEmbedder)
    assert (embedder.model, embedder.dimensions) == ("nomic-embed-text", 768)
    assert embedder.endpoint == "http://127.0.0.1:11434/v1/embeddings"
    with pytest.raises(ConfigError, match="OLLAMA_KEY is not set"):
        config.embedder_api_key({})


def test_the_environment_chooses_too(tmp_path: Path) -> None:
    env = {
        "SCRIBE_HOME": str(tmp_path),
        "SCRIBE_EMBEDDER": "hashing",
        "SCRIBE_EMBEDDER_DIMENSIONS": "128",
    }
    config = load_config(environ=env, config_file=_write(tmp_path / "c.toml", ""))
    embedder = configured_embedder(config)
    assert (embedder.model, embedder.dimensions) == ("hashing-128", 128)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"embedder": "word2vec"}, "'embedder' must be a string"),
        ({"embedder": "openai"}, "'embedder_url' is required"),
        (
            {"embedder": "openai", "embedder_url": "http://x/v1", "embedder_model": "m"},
            "'embedder_dimensions' is required",
        ),
        ({"embedder_url": "http://x/v1"}, "only for the 'openai' embedder"),
        ({"embedder_api_key_env": "KEY"}, "only for the 'openai' embedder"),
        ({"embedder_model": "other"}, "has one model"),
        ({"embedder_dimensions": 100}, "must be 64, 128 or 256"),
        ({"embedder": "hashing", "embedder_dimensions": 4}, "within 8..4096"),
        ({"embedder": "openai", "embedder_url": "file:///etc"}, "an http or https URL"),
        ({"embedder_api_key_env": "NOT A NAME"}, "an environment variable's name"),
        ({"embedder_batch_size": 0}, "from 1 to 4096"),
        ({"embedder_timeout": 0}, "> 0"),
        ({"embedder_model": "x" * 501, "embedder": "sentence-transformers"}, "1 to 500"),
    ],
)
def test_bad_embedder_settings_are_typed_errors(
    tmp_path: Path, fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        AppConfig(home=tmp_path, **fields)  # type: ignore[arg-type]
    assert isinstance(caught.value, engine.InvalidArgumentError)


def test_the_factory_refuses_what_it_does_not_know() -> None:
    with pytest.raises(engine.InvalidArgumentError, match="unknown embedder"):
        adapters.create_embedder("word2vec")
    with pytest.raises(engine.InvalidArgumentError, match="needs a url"):
        adapters.create_embedder("openai", model="m")
    assert set(adapters.EMBEDDER_NAMES) == {
        "wordllama",
        "hashing",
        "sentence-transformers",
        "openai",
    }


async def test_sentence_transformers_is_lazy_and_says_what_to_install() -> None:
    embedder = adapters.create_embedder("sentence-transformers")
    assert isinstance(embedder, adapters.SentenceTransformersEmbedder)
    assert (embedder.model, embedder.dimensions) == ("sentence-transformers/all-MiniLM-L6-v2", 384)
    with pytest.raises(engine.InvalidArgumentError, match="dimensions of model"):
        adapters.SentenceTransformersEmbedder("/models/unknown")
    # The default install has no torch: the first use says which extra brings it.
    with pytest.raises(engine.EmbeddingError, match="the 'minilm' extra"):
        await embedder.embed(["needs torch"])


async def test_hashing_embeds_big_batches_in_worker_threads() -> None:
    embedder = adapters.HashingEmbedder(64, batch_size=5)
    texts = [f"session {i} changed the limiter" for i in range(INLINE_TEXTS * 3)]
    threads: set[object] = set()
    original = embedder.embed_sync

    def spy(batch: list[str]) -> list[list[float]]:
        threads.add(threading.current_thread())
        return original(batch)

    embedder.embed_sync = spy  # type: ignore[method-assign]
    vectors = await embedder.embed(texts)
    assert vectors == [embedder.embed_one(t) for t in texts]
    assert threads and threading.main_thread() not in threads
    threads.clear()
    await embedder.embed(texts[:2])  # a few short texts: inline
    assert threads == {threading.main_thread()}
    with trio.move_on_after(0) as scope:
        await embedder.embed(texts)
    assert scope.cancelled_caught
