"""The application's configuration: flags > environment > TOML file > defaults, with typed errors."""

from __future__ import annotations

from pathlib import Path

import pytest

import engine
from engine.app import AppConfig, ConfigError, load_config


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_follow_the_xdg_directories(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    config = load_config(environ=env)
    assert config.home == tmp_path / "data" / "scribe"
    assert config.config_file is None
    assert (config.database_url, config.feed_port, config.dashboard_port) == (None, 8766, 8765)
    assert config.idle_timeout == 1800.0 and config.session == "default"


def test_home_without_xdg_is_under_the_user_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/nonexistent/u")
    assert load_config(environ={}).home == Path("/nonexistent/u/.local/share/scribe")


def test_file_then_environment_then_flags(tmp_path: Path) -> None:
    cfg = _write(
        tmp_path / "cfg" / "scribe" / "config.toml",
        'database_url = "postgresql:///file"\nfeed_port = 1111\ndashboard_port = 2222\n'
        'idle_timeout = 60\nend_on_push = false\nhome = "~/from-file"\n',
    )
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "HOME": str(tmp_path)}
    from_file = load_config(environ=env)
    assert from_file.config_file == cfg
    assert from_file.database_url == "postgresql:///file"
    assert (from_file.feed_port, from_file.dashboard_port) == (1111, 2222)
    assert from_file.idle_timeout == 60.0 and from_file.end_on_push is False
    assert from_file.home == Path("~/from-file").expanduser()

    env |= {
        "SCRIBE_DATABASE_URL": "postgresql:///env",
        "SCRIBE_FEED_PORT": "3333",
        "SCRIBE_END_ON_PUSH": "yes",
        "SCRIBE_HOME": str(tmp_path / "envhome"),
    }
    from_env = load_config(environ=env)
    assert from_env.database_url == "postgresql:///env" and from_env.feed_port == 3333
    assert from_env.dashboard_port == 2222 and from_env.end_on_push is True
    assert from_env.home == tmp_path / "envhome"

    flagged = load_config(
        {"database_url": "postgresql:///flag", "feed_port": 0, "idle_timeout": 0, "home": None},
        environ=env,
    )
    assert flagged.database_url == "postgresql:///flag" and flagged.feed_port == 0
    assert flagged.idle_timeout is None  # 0 means never
    assert flagged.home == tmp_path / "envhome"  # None: not given


def test_a_named_file_wins_over_the_default_one(tmp_path: Path) -> None:
    _write(tmp_path / "cfg" / "scribe" / "config.toml", "pool_size = 2\n")
    named = _write(tmp_path / "other.toml", "pool_size = 7\n")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "SCRIBE_CONFIG": str(named)}
    assert load_config(environ=env).pool_size == 7
    flag_file = _write(tmp_path / "flag.toml", "pool_size = 9\n")
    config = load_config(config_file=flag_file, environ=env)
    assert config.pool_size == 9 and config.config_file == flag_file


def test_a_missing_named_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist") as info:
        load_config(config_file=tmp_path / "nope.toml", environ={})
    assert str(tmp_path / "nope.toml") in str(info.value)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(environ={"SCRIBE_CONFIG": str(tmp_path / "nope.toml")})


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("colour = 'blue'\n", "colour", "unknown key 'colour'"),
        ("feed_port = 'x'\n", "feed_port", "'feed_port' must be an integer from 0 to 65535"),
        ("feed_port = 70000\n", "feed_port", "from 0 to 65535"),
        ("pool_size = 0\n", "pool_size", ">= 1"),
        ("end_on_push = 1\n", "end_on_push", "must be a boolean"),
        ("idle_timeout = -5\n", "idle_timeout", "> 0"),
        ("idle_timeout = true\n", "idle_timeout", "must be a number"),
        ("summary_interval = nan\n", "summary_interval", "must be a number"),
        ("database_url = 5\n", "database_url", "must be a string"),
        ("[serve]\nhost = 'x'\n", "serve", "unknown key 'serve'"),
        ("pool_size = = 3\n", "config", "not valid TOML"),
    ],
)
def test_bad_files_name_the_key_and_the_file(
    tmp_path: Path, text: str, key: str, message: str
) -> None:
    path = _write(tmp_path / "config.toml", text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(config_file=path, environ={})
    assert isinstance(info.value, engine.InvalidArgumentError)
    assert info.value.key == key and info.value.source == str(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SCRIBE_FEED_PORT", "http", "must be an integer"),
        ("SCRIBE_DASHBOARD_PORT", "-1", "from 0 to 65535"),
        ("SCRIBE_END_ON_PUSH", "maybe", "true or false"),
        ("SCRIBE_IDLE_TIMEOUT", "soon", "must be a number"),
    ],
)
def test_bad_environment_values_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_config(environ={name: value, "XDG_CONFIG_HOME": "/nonexistent"})
    assert info.value.source == name and name in str(info.value)


def test_bad_flags_are_refused() -> None:
    with pytest.raises(ConfigError, match="--pool-size"):
        load_config({"pool_size": 0}, environ={"XDG_CONFIG_HOME": "/nonexistent"})
    with pytest.raises(ConfigError, match="unknown setting"):
        load_config({"colour": "blue"}, environ={"XDG_CONFIG_HOME": "/nonexistent"})


def test_the_config_checks_itself(tmp_path: Path) -> None:
    assert AppConfig(home=tmp_path).pool_size == 4
    with pytest.raises(ConfigError, match="feed_port"):
        AppConfig(home=tmp_path, feed_port=-1)
    with pytest.raises(AttributeError):
        AppConfig(home=tmp_path).pool_size = 3  # type: ignore[misc]


def test_the_readme_example_is_a_valid_file(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    example = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    path = _write(tmp_path / "config.toml", example)
    config = load_config(config_file=path, environ={"HOME": str(tmp_path)})
    assert config.database_url == "postgresql://u@h/scribe" and config.feed_port == 8766
    assert config.home == Path("~/.local/share/scribe").expanduser()
    assert config.allowed_hosts == ("scribe.lan",)


def test_allowed_hosts_from_the_file_and_the_environment(tmp_path: Path) -> None:
    path = _write(tmp_path / "config.toml", "allowed_hosts = ['a.lan', 'b.lan']\n")
    assert load_config(config_file=path, environ={}).allowed_hosts == ("a.lan", "b.lan")
    env = {"SCRIBE_ALLOWED_HOSTS": " c.lan, d.lan ,", "XDG_CONFIG_HOME": "/nonexistent"}
    assert load_config(environ=env).allowed_hosts == ("c.lan", "d.lan")
    assert load_config(environ={"XDG_CONFIG_HOME": "/nonexistent"}).allowed_hosts == ()
    for bad in ("allowed_hosts = 'a.lan'\n", "allowed_hosts = [1]\n", "allowed_hosts = ['']\n"):
        with pytest.raises(ConfigError, match="allowed_hosts"):
            load_config(config_file=_write(tmp_path / "bad.toml", bad), environ={})


def test_privacy_settings_from_the_file_and_the_environment(tmp_path: Path) -> None:
    text = (
        "redact_disabled = ['jwt']\n"
        "hook_recall = true\n"
        "briefing_budget = 800\n"
        "[redact_patterns]\n"
        "acme-key = 'acme_[a-z0-9]{8,}'\n"
    )
    config = load_config(config_file=_write(tmp_path / "config.toml", text), environ={})
    assert config.redact_secrets and config.hook_recall and config.briefing_budget == 800
    assert config.redact_patterns == (("acme-key", "acme_[a-z0-9]{8,}"),)
    privacy = config.privacy()
    assert privacy.disabled_patterns == {"jwt"}
    assert privacy.scrub("k acme_12345678 <private>x</private>") == "k [redacted:acme-key] [private]"
    env = {
        "XDG_CONFIG_HOME": "/nonexistent",
        "SCRIBE_REDACT_SECRETS": "off",
        "SCRIBE_REDACT_PATTERNS": '{"corp-token": "corp-[0-9]+"}',
    }
    config = load_config(environ=env)
    assert config.redact_patterns == (("corp-token", "corp-[0-9]+"),)
    assert not config.privacy().redact and config.privacy().patterns == ()
    assert config.privacy().scrub("corp-12 <private>x</private>") == "corp-12 [private]"
    defaults = AppConfig(home=tmp_path)
    assert not defaults.hook_recall and defaults.briefing_budget == 1500
    assert defaults.privacy() == engine.Privacy()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("redact_disabled = ['no-such-pattern']\n", "default secret patterns"),
        ("[redact_patterns]\nbad = '(unclosed'\n", "each regex compiling"),
        ("[redact_patterns]\nBad_Name = 'x'\n", "each name lowercase"),
        ("[redact_patterns]\njwt = 'x'\n", "new"),
        ("[redact_patterns]\nx = 3\n", "a table of names to strings"),
        ("briefing_budget = 10\n", "from 100"),
    ],
)
def test_bad_privacy_settings_are_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(config_file=_write(tmp_path / "config.toml", text), environ={})


def test_a_pattern_table_in_the_environment_must_be_a_json_object() -> None:
    env = {"XDG_CONFIG_HOME": "/nonexistent", "SCRIBE_REDACT_PATTERNS": "[1]"}
    with pytest.raises(ConfigError, match="JSON object") as info:
        load_config(environ=env)
    assert info.value.source == "SCRIBE_REDACT_PATTERNS"
