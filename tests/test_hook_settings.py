"""Scribe's hooks in Claude Code's settings files: the pure merge, the file edit and the command line.

The settings below follow Claude Code's documented format (https://code.claude.com/docs/en/hooks:
``"hooks"`` maps an event to matcher groups ``{"matcher", "hooks": [{"type": "command", "command",
"timeout"}]}``; https://code.claude.com/docs/en/settings: the user, project and local files), with
hooks of the kinds people install: formatters after edits, a guard before shell commands, a
notifier, a start-up script.
"""

from __future__ import annotations

import copy
import json
import os
import shlex
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fs_support import make_fifo
from git_repos import make_repo

from adapters import (
    CLAUDE_CODE_HOOKS,
    HOOK_TIMEOUT_SECONDS,
    MAX_HOOK_COMMAND,
    MAX_SETTINGS_FILE,
    HookSpec,
    SettingsChangedError,
    SettingsFormatError,
    SettingsPathError,
    SettingsScope,
    apply_settings_change,
    hook_command,
    install_hooks,
    is_scribe_hook,
    settings_path,
    uninstall_hooks,
)
from engine import InvalidArgumentError
from engine.app._cli_hooks import scribe_executable

ROOT = Path(__file__).resolve().parent.parent
SCRIBE = "/home/dev/.local/bin/scribe"
COMMAND = hook_command(SCRIBE)
EDIT_TOOLS = "Edit|Write|MultiEdit|NotebookEdit|Bash"
OUR_EVENTS = ["SessionStart", "UserPromptSubmit", "PostToolUse", "PreCompact", "Stop", "SessionEnd"]


def _cmd(command: str, timeout: int | None = None) -> dict[str, Any]:
    handler: dict[str, Any] = {"type": "command", "command": command}
    if timeout is not None:
        handler["timeout"] = timeout
    return handler


def _theirs() -> dict[str, Any]:
    """A user's settings with hooks on Scribe's events (same matchers too) and on others."""
    return {
        "$schema": "https://json.schemastore.org/claude-code-settings.json",
        "permissions": {"allow": ["Bash(npm run lint)"], "deny": ["Read(./.env)"]},
        "hooks": {
            "PreToolUse": [
                {"matcher": "Bash", "hooks": [_cmd("python3 ~/.claude/hooks/bash_guard.py")]}
            ],
            "PostToolUse": [
                {
                    "matcher": EDIT_TOOLS,
                    "hooks": [_cmd('npx prettier --write "$CLAUDE_PROJECT_DIR"', 30)],
                },
                {"matcher": "Write", "hooks": [_cmd("~/.claude/hooks/lint.sh")]},
            ],
            "SessionStart": [
                {"matcher": "startup", "hooks": [_cmd("~/.claude/hooks/greet.sh")]},
                {"hooks": [_cmd("echo started >> ~/claude.log", 5)]},
            ],
            "Stop": [{"hooks": [_cmd("notify-send 'Claude is done'")]}],
            "Notification": [{"matcher": "", "hooks": [_cmd("say waiting")]}],
        },
        "model": "sonnet",
        "env": {"DISABLE_TELEMETRY": "1"},
    }


def _ours(settings: dict[str, Any], event: str) -> list[tuple[int, int, dict[str, Any]]]:
    return [
        (gi, hi, h)
        for gi, group in enumerate(settings["hooks"].get(event, []))
        for hi, h in enumerate(group["hooks"])
        if is_scribe_hook(h)
    ]


# ------------------------------------------------------------------------------- the pure merge


def test_install_adds_one_handler_per_event_after_everyone_elses() -> None:
    before = _theirs()
    kept = copy.deepcopy(before)
    after = install_hooks(before, COMMAND)
    assert before == kept  # the argument is not changed
    assert list(after) == list(before)  # the keys and their order
    assert {k: v for k, v in after.items() if k != "hooks"} == {
        k: v for k, v in before.items() if k != "hooks"
    }
    old_events = list(before["hooks"])
    assert list(after["hooks"]) == old_events + [e for e in OUR_EVENTS if e not in old_events]
    for event, groups in after["hooks"].items():
        old = before["hooks"].get(event, [])
        if event in OUR_EVENTS:
            # everyone else's groups exactly as they were, in place; Scribe's own group last
            assert groups[:-1] == old
            spec = next(s for s in CLAUDE_CODE_HOOKS if s.event == event)
            expected: dict[str, Any] = {"matcher": spec.matcher} if spec.matcher else {}
            expected["hooks"] = [_cmd(COMMAND, HOOK_TIMEOUT_SECONDS)]
            assert groups[-1] == expected
        else:
            assert groups == old
    assert after["hooks"]["PostToolUse"][-1]["matcher"] == EDIT_TOOLS
    assert 0 < HOOK_TIMEOUT_SECONDS < 60


def test_install_into_settings_without_hooks_appends_the_hooks_key() -> None:
    before = {"model": "opus", "permissions": {"allow": []}}
    after = install_hooks(before, COMMAND)
    assert list(after) == ["model", "permissions", "hooks"]
    assert list(after["hooks"]) == OUR_EVENTS
    assert install_hooks({}, COMMAND) == {"hooks": after["hooks"]}


def test_installing_twice_is_installing_once() -> None:
    once = install_hooks(_theirs(), COMMAND)
    assert install_hooks(once, COMMAND) == once
    assert json.dumps(install_hooks(once, COMMAND)) == json.dumps(once)  # order too


def test_a_new_command_replaces_only_scribes_handlers_where_they_stand() -> None:
    once = install_hooks(_theirs(), COMMAND)
    moved = hook_command("/opt/scribe env/bin/scribe")
    again = install_hooks(once, moved)
    for event in OUR_EVENTS:
        assert [(gi, hi) for gi, hi, _ in _ours(again, event)] == [
            (gi, hi) for gi, hi, _ in _ours(once, event)
        ]
        assert [h["command"] for _, _, h in _ours(again, event)] == [moved]
    # nothing but the command changed
    assert json.dumps(again).replace(json.dumps(moved), json.dumps(COMMAND)) == json.dumps(once)


def test_scribes_handler_in_someone_elses_group_is_updated_in_place() -> None:
    settings = _theirs()
    shared = settings["hooks"]["SessionStart"][1]["hooks"]
    shared.insert(0, _cmd("/usr/old/scribe hook claude-code", 3))  # put there by hand
    after = install_hooks(settings, COMMAND)
    groups = after["hooks"]["SessionStart"]
    assert len(groups) == 2  # no group of its own added
    assert groups[0] == settings["hooks"]["SessionStart"][0]
    assert groups[1]["hooks"] == [
        _cmd(COMMAND, HOOK_TIMEOUT_SECONDS),
        _cmd("echo started >> ~/claude.log", 5),
    ]
    assert install_hooks(after, COMMAND) == after


def test_duplicates_of_scribes_handlers_are_collapsed_to_one() -> None:
    settings = _theirs()
    stop = settings["hooks"]["Stop"]
    stop[0]["hooks"].append(_cmd("scribe hook claude-code"))
    stop.append({"hooks": [_cmd("'/a b/scribe' hook claude-code", 99)]})
    stop.append({"hooks": [_cmd("other-tool --flush")]})
    after = install_hooks(settings, COMMAND)
    assert after["hooks"]["Stop"] == [
        {"hooks": [_cmd("notify-send 'Claude is done'"), _cmd(COMMAND, HOOK_TIMEOUT_SECONDS)]},
        {"hooks": [_cmd("other-tool --flush")]},
    ]


def test_a_scribe_handler_under_another_matcher_moves_to_scribes_own_group() -> None:
    settings = {
        "hooks": {
            "PostToolUse": [
                {"matcher": "Edit", "hooks": [_cmd(COMMAND), _cmd("black .")]},
                {"matcher": "Read", "hooks": [_cmd(COMMAND)]},
            ]
        }
    }
    after = install_hooks(settings, COMMAND)
    assert after["hooks"]["PostToolUse"] == [
        {"matcher": "Edit", "hooks": [_cmd("black .")]},
        {"matcher": EDIT_TOOLS, "hooks": [_cmd(COMMAND, HOOK_TIMEOUT_SECONDS)]},
    ]


def test_uninstall_after_install_gives_the_settings_back() -> None:
    for before in (
        _theirs(),
        {},
        {"model": "haiku"},
        {"hooks": {"Stop": [_theirs()["hooks"]["Stop"][0]]}},
    ):
        after = uninstall_hooks(install_hooks(before, COMMAND))
        assert json.dumps(after) == json.dumps(before)


def test_uninstall_removes_only_scribes_handlers_and_what_their_removal_emptied() -> None:
    settings = _theirs()
    settings["hooks"]["SessionStart"][1]["hooks"].append(_cmd("/x/scribe hook claude-code"))
    settings["hooks"]["Notification"].append({"hooks": [_cmd("scribe hook claude-code")]})
    settings["hooks"]["SubagentStop"] = [{"hooks": [_cmd("scribe hook claude-code")]}]
    settings["hooks"]["PreCompact"] = []  # empty before: not Scribe's to remove
    look_alikes = [
        _cmd("scribe hook claude-code --verbose"),
        _cmd("my-scribe-wrapper.sh"),
        {"type": "prompt", "prompt": "scribe hook claude-code"},
        _cmd("hook claude-code"),
        "not a handler",
    ]
    settings["hooks"]["UserPromptSubmit"] = [{"hooks": look_alikes}]
    after = uninstall_hooks(settings)
    expected = _theirs()
    expected["hooks"]["PreCompact"] = []
    expected["hooks"]["UserPromptSubmit"] = [{"hooks": look_alikes}]
    assert json.dumps(after) == json.dumps(expected)
    assert uninstall_hooks(after) == after


def test_uninstall_of_settings_without_hooks_changes_nothing() -> None:
    for settings in ({}, {"model": "x"}, {"hooks": {}}, {"hooks": None}, _theirs()):
        assert json.dumps(uninstall_hooks(settings)) == json.dumps(settings)


def test_which_handlers_are_scribes() -> None:
    assert is_scribe_hook(_cmd("/usr/local/bin/scribe hook claude-code"))
    assert is_scribe_hook(_cmd("'/opt/my tools/scribe' hook claude-code"))
    assert is_scribe_hook(_cmd("scribe   hook  claude-code  "))
    assert is_scribe_hook(_cmd(COMMAND, 10))
    for handler in (
        _cmd("hook claude-code"),
        _cmd("scribe hook claude-code --quiet"),
        _cmd("scribe hook codex"),
        _cmd("'unbalanced hook claude-code"),
        {"type": "prompt", "command": "scribe hook claude-code"},
        {"command": "scribe hook claude-code"},
        _cmd("x" * MAX_HOOK_COMMAND + " hook claude-code"),
        "scribe hook claude-code",
        None,
    ):
        assert not is_scribe_hook(handler), handler


def test_the_hook_command_is_quoted_for_a_shell() -> None:
    for program in ("/usr/bin/scribe", "/home/me/my tools/scribe", "/tmp/$(rm -rf ~)/it's/scribe"):
        command = hook_command(program)
        assert shlex.split(command) == [program, "hook", "claude-code"]
        assert is_scribe_hook(_cmd(command))
    assert hook_command("/usr/bin/scribe") == "/usr/bin/scribe hook claude-code"


def test_install_refuses_a_bad_command_or_a_malformed_hooks_object() -> None:
    for command in (
        "/usr/bin/scribe hook claude-code\nrm -rf ~",
        "/usr/bin/scribe\0 hook claude-code",
        "/usr/bin/scribe serve",
        "/" + "x" * MAX_HOOK_COMMAND + " hook claude-code",
    ):
        with pytest.raises(InvalidArgumentError):
            install_hooks({}, command)
    for settings in ({"hooks": []}, {"hooks": "on"}, {"hooks": {"Stop": {"hooks": []}}}):
        with pytest.raises(SettingsFormatError):
            install_hooks(settings, COMMAND)


def test_other_hook_specs_can_be_installed() -> None:
    specs = (HookSpec("SessionStart", "startup|resume", 3),)
    after = install_hooks({}, COMMAND, hooks=specs)
    assert after == {
        "hooks": {"SessionStart": [{"matcher": "startup|resume", "hooks": [_cmd(COMMAND, 3)]}]}
    }


# ------------------------------------------------------------------------------------ the scopes


def test_scopes_name_claude_codes_settings_files(tmp_path: Path) -> None:
    home, project = tmp_path / "home", tmp_path / "repo"
    assert settings_path("user", home=home) == home / ".claude" / "settings.json"
    assert settings_path(SettingsScope.USER, home=home, project=project) == (
        home / ".claude" / "settings.json"
    )
    assert settings_path("project", home=home, project=project) == (
        project / ".claude" / "settings.json"
    )
    assert settings_path(SettingsScope.LOCAL, home=home, project=project) == (
        project / ".claude" / "settings.local.json"
    )
    with pytest.raises(InvalidArgumentError):
        settings_path("project", home=home)
    with pytest.raises(InvalidArgumentError):
        settings_path("enterprise", home=home, project=project)


# ------------------------------------------------------------------------------ the file edit


def _install(settings: dict[str, Any]) -> dict[str, Any]:
    return install_hooks(settings, COMMAND)


def _write_json(path: Path, value: Any, indent: int | None = 2, end: str = "\n") -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(value, indent=indent) + end).encode()
    path.write_bytes(data)
    return data


def _leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.endswith(".scribe-tmp")]


def test_install_then_uninstall_gives_the_file_back_byte_for_byte(tmp_path: Path) -> None:
    for indent, end in ((2, "\n"), (4, ""), ("\t", "\n")):
        path = tmp_path / f"i{indent!r}" / ".claude" / "settings.json"
        path.parent.mkdir(parents=True)
        original = (json.dumps(_theirs(), indent=indent) + end).encode()
        path.write_bytes(original)
        os.chmod(path, 0o640)
        change = apply_settings_change(path, _install)
        assert change.written and change.changed
        assert change.before == original.decode() and change.after == path.read_text()
        assert json.loads(path.read_text()) == _install(_theirs())
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
        again = apply_settings_change(path, _install)
        assert not again.written and not again.changed and again.diff() == ""
        removed = apply_settings_change(path, uninstall_hooks)
        assert removed.written
        assert path.read_bytes() == original
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
        assert _leftovers(path.parent) == []


def test_a_file_written_otherwise_comes_back_equal_as_json(tmp_path: Path) -> None:
    path = tmp_path / ".claude" / "settings.json"
    _write_json(path, _theirs(), indent=None)  # one line
    apply_settings_change(path, _install)
    apply_settings_change(path, uninstall_hooks)
    assert json.loads(path.read_text()) == _theirs()


def test_installing_twice_leaves_the_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / ".claude" / "settings.json"
    _write_json(path, _theirs())
    apply_settings_change(path, _install)
    before = path.read_bytes(), path.stat().st_mtime_ns, path.stat().st_ino
    change = apply_settings_change(path, _install)
    assert not change.written and change.before == change.after
    assert (path.read_bytes(), path.stat().st_mtime_ns, path.stat().st_ino) == before


def test_a_missing_file_and_directory_are_created(tmp_path: Path) -> None:
    path = tmp_path / "repo" / ".claude" / "settings.local.json"
    (tmp_path / "repo").mkdir()
    change = apply_settings_change(path, _install)
    assert change.before is None and change.written
    assert json.loads(path.read_text()) == _install({})
    assert path.read_text().endswith("}\n")
    assert apply_settings_change(path, uninstall_hooks).written
    assert json.loads(path.read_text()) == {}
    # nothing to remove from a missing file: nothing is created
    gone = tmp_path / "other" / ".claude" / "settings.json"
    (tmp_path / "other").mkdir()
    change = apply_settings_change(gone, uninstall_hooks)
    assert not change.written and change.before is None and change.after is None
    assert not gone.parent.exists()


def test_dry_run_changes_nothing_and_shows_the_diff(tmp_path: Path) -> None:
    path = tmp_path / ".claude" / "settings.json"
    original = _write_json(path, _theirs())
    mtime = path.stat().st_mtime_ns
    change = apply_settings_change(path, _install, dry_run=True)
    assert not change.written and change.changed
    assert path.read_bytes() == original and path.stat().st_mtime_ns == mtime
    diff = change.diff()
    assert diff.startswith(f"--- {path} (before)\n+++ {path} (after)\n")
    added = [line[1:] for line in diff.splitlines() if line.startswith("+") and "+++" not in line]
    assert any(json.dumps(COMMAND) in line for line in added)
    assert not any(line.startswith("-") and "---" not in line for line in diff.splitlines())
    assert _leftovers(path.parent) == []
    # a missing file: the directory is not created either
    new = tmp_path / "fresh" / ".claude" / "settings.json"
    (tmp_path / "fresh").mkdir()
    change = apply_settings_change(new, _install, dry_run=True)
    assert change.diff().startswith("--- /dev/null\n")
    assert not new.parent.exists()


@pytest.mark.parametrize(
    "content",
    [
        b'{"hooks": {"Stop": [',  # torn
        b"[]",
        b'"hooks"',
        b"{'hooks': {}}",
        b'{"timeout": NaN}',
        b"",
        b"\xef\xbb\xbf{}",  # a byte order mark
        b'{"model": "\xff"}',  # not UTF-8
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_a_file_that_is_not_a_json_object_is_refused_and_left_intact(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / ".claude" / "settings.json"
    path.parent.mkdir()
    path.write_bytes(content)
    for change in (_install, uninstall_hooks):
        with pytest.raises(SettingsFormatError) as info:
            apply_settings_change(path, change)
        assert info.value.path == path
        assert path.read_bytes() == content
    assert _leftovers(path.parent) == []


def test_malformed_hooks_and_a_file_too_large_are_refused(tmp_path: Path) -> None:
    path = tmp_path / ".claude" / "settings.json"
    original = _write_json(path, {"hooks": {"Stop": "notify"}})
    with pytest.raises(SettingsFormatError, match=r"hooks\.Stop"):
        apply_settings_change(path, _install)
    assert path.read_bytes() == original
    with open(path, "r+b") as f:
        f.truncate(MAX_SETTINGS_FILE + 1)
    with pytest.raises(SettingsFormatError, match="larger"):
        apply_settings_change(path, _install)
    assert path.stat().st_size == MAX_SETTINGS_FILE + 1


def test_a_symlinked_settings_file_or_directory_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "dotfiles" / "claude-settings.json"
    original = _write_json(elsewhere, _theirs())
    path = tmp_path / "home" / ".claude" / "settings.json"
    path.parent.mkdir(parents=True)
    path.symlink_to(elsewhere)
    for change in (_install, uninstall_hooks):
        with pytest.raises(SettingsPathError, match="symlink"):
            apply_settings_change(path, change)
    assert elsewhere.read_bytes() == original and path.is_symlink()
    dangling = tmp_path / "home2" / ".claude" / "settings.json"
    dangling.parent.mkdir(parents=True)
    dangling.symlink_to(tmp_path / "nowhere.json")
    with pytest.raises(SettingsPathError):
        apply_settings_change(dangling, _install)
    assert not (tmp_path / "nowhere.json").exists()
    linked_dir = tmp_path / "repo" / ".claude"
    (tmp_path / "repo").mkdir()
    linked_dir.symlink_to(elsewhere.parent)
    with pytest.raises(SettingsPathError, match="symlink"):
        apply_settings_change(linked_dir / "claude-settings.json", _install)
    assert elsewhere.read_bytes() == original


def test_a_settings_path_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    fifo = make_fifo(tmp_path / "a" / ".claude" / "settings.json")
    with pytest.raises(SettingsPathError, match="FIFO"):
        apply_settings_change(fifo, _install)  # never opened: a reader would block
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    directory = tmp_path / "b" / ".claude" / "settings.json"
    directory.mkdir(parents=True)
    with pytest.raises(SettingsPathError, match="directory"):
        apply_settings_change(directory, _install)
    not_a_dir = tmp_path / "c" / ".claude"
    not_a_dir.parent.mkdir()
    not_a_dir.write_text("a file where the directory should be")
    with pytest.raises(SettingsPathError):
        apply_settings_change(not_a_dir / "settings.json", _install)


def test_a_file_written_meanwhile_by_someone_else_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / ".claude" / "settings.json"
    _write_json(path, _theirs())
    theirs = json.dumps({"model": "opus", "theme": "dark"}, indent=2).encode()

    def racing(settings: dict[str, Any]) -> dict[str, Any]:
        path.write_bytes(theirs)  # Claude Code saves its settings while Scribe edits them
        return _install(settings)

    with pytest.raises(SettingsChangedError):
        apply_settings_change(path, racing)
    assert path.read_bytes() == theirs
    assert _leftovers(path.parent) == []


# ---------------------------------------------------------------------------- the command line


def _fake_scribe(directory: Path) -> Path:
    """A ``scribe`` console script like the one pip installs, running this tree."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "scribe"
    script.write_text(
        f"#!{sys.executable}\nimport sys\nfrom engine.app import main\nsys.exit(main())\n"
    )
    script.chmod(0o755)
    return script


def _run(
    argv: list[str], *, home: Path, cwd: Path, path_dirs: tuple[Path, ...] = ()
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HOME": str(home),
        "PYTHONPATH": str(ROOT),
        "PATH": os.pathsep.join([*map(str, path_dirs), "/usr/bin", "/bin"]),
    }
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def _cli(*args: str, home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return _run([sys.executable, "-m", "engine", *args], home=home, cwd=cwd)


def test_cli_install_and_uninstall_in_the_user_settings(tmp_path: Path) -> None:
    home = tmp_path / "home"
    scribe = _fake_scribe(tmp_path / "bin")
    settings = home / ".claude" / "settings.json"
    original = _write_json(settings, _theirs())
    # run as the installed program: the hooks run this very program
    r = _run([str(scribe), "hooks", "install", "claude-code"], home=home, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert str(settings) in r.stdout
    assert json.loads(settings.read_text()) == install_hooks(_theirs(), hook_command(scribe))
    installed = settings.read_bytes()
    r = _run([str(scribe), "hooks", "install", "claude-code"], home=home, cwd=tmp_path)
    assert r.returncode == 0 and "already" in r.stdout
    assert settings.read_bytes() == installed
    r = _cli("hooks", "uninstall", "claude-code", "--dry-run", home=home, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"--- {settings} (before)" in r.stdout and f'-{" " * 12}"command"' in r.stdout
    assert settings.read_bytes() == installed
    r = _cli("hooks", "uninstall", "claude-code", home=home, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "removed" in r.stdout
    assert settings.read_bytes() == original


def test_cli_finds_scribe_on_the_path_or_is_told_where(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    settings = home / ".claude" / "settings.json"
    scribe = _fake_scribe(tmp_path / "my bin")
    r = _run(
        [sys.executable, "-m", "engine", "hooks", "install", "claude-code"],
        home=home,
        cwd=tmp_path,
        path_dirs=(scribe.parent,),
    )
    assert r.returncode == 0, r.stderr
    commands = {h["command"] for _, _, h in _ours(json.loads(settings.read_text()), "Stop")}
    assert commands == {hook_command(scribe)} and "'" in hook_command(scribe)
    other = _fake_scribe(tmp_path / "other")
    r = _cli("hooks", "install", "claude-code", "--scribe", str(other), home=home, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    after = json.loads(settings.read_text())
    assert {h["command"] for e in OUR_EVENTS for _, _, h in _ours(after, e)} == {
        hook_command(other)
    }
    r = _cli("hooks", "install", "claude-code", "--dry-run", home=home, cwd=tmp_path)
    assert r.returncode == 1 and "--scribe" in r.stderr  # no scribe on PATH, none named
    r = _cli("hooks", "install", "claude-code", "--scribe", str(home), home=home, cwd=tmp_path)
    assert r.returncode == 1 and "not an executable" in r.stderr


def test_cli_project_and_local_scopes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    repo = make_repo(tmp_path / "repo")
    (repo / "src" / "pkg").mkdir(parents=True)
    scribe = _fake_scribe(tmp_path / "bin")
    r = _cli(
        "hooks", "install", "claude-code", "--scope", "project", "--scribe", str(scribe),
        home=home, cwd=repo / "src" / "pkg",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert (repo / ".claude" / "settings.json").is_file()
    assert not (repo / "src" / "pkg" / ".claude").exists() and not (home / ".claude").exists()
    elsewhere = tmp_path / "plain"
    elsewhere.mkdir()
    r = _cli(
        "hooks", "install", "claude-code", "--scope", "local", "--project", str(repo),
        "--scribe", str(scribe), home=home, cwd=elsewhere,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    local = json.loads((repo / ".claude" / "settings.local.json").read_text())
    assert local == install_hooks({}, hook_command(scribe))
    r = _cli("hooks", "uninstall", "claude-code", "--scope", "project", home=home, cwd=repo)
    assert r.returncode == 0, r.stderr
    assert json.loads((repo / ".claude" / "settings.json").read_text()) == {}
    r = _cli("hooks", "uninstall", "claude-code", "--project", str(repo), home=home, cwd=repo)
    assert r.returncode == 1 and "--scope" in r.stderr


def test_cli_refuses_bad_settings_and_leaves_them(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = home / ".claude" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_bytes(b'{"hooks": {\x1b[31m')
    scribe = _fake_scribe(tmp_path / "bin")
    r = _cli("hooks", "install", "claude-code", "--scribe", str(scribe), home=home, cwd=tmp_path)
    assert r.returncode == 1
    assert "not JSON" in r.stderr and "\x1b" not in r.stderr and r.stdout == ""
    assert settings.read_bytes() == b'{"hooks": {\x1b[31m'
    settings.unlink()
    target = tmp_path / "dotfiles.json"
    target.write_text("{}")
    settings.symlink_to(target)
    r = _cli("hooks", "uninstall", "claude-code", home=home, cwd=tmp_path)
    assert r.returncode == 1 and "symlink" in r.stderr
    assert target.read_text() == "{}"
    r = _cli("hooks", "install", "codex", home=home, cwd=tmp_path)
    assert r.returncode == 2
    settings.unlink()
    settings.write_text('{"disableAllHooks": true}')
    r = _cli("hooks", "install", "claude-code", "--scribe", str(scribe), home=home, cwd=tmp_path)
    assert r.returncode == 0 and "disableAllHooks" in r.stderr


def test_cli_help_lists_the_hooks_command(tmp_path: Path) -> None:
    r = _cli("--help", home=tmp_path, cwd=tmp_path)
    assert r.returncode == 0 and "    hooks" in r.stdout
    r = _cli("hooks", "install", "--help", home=tmp_path, cwd=tmp_path)
    assert r.returncode == 0 and "--scope" in r.stdout and "--dry-run" in r.stdout


def test_scribe_executable_is_this_program_or_the_one_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scribe = _fake_scribe(tmp_path / "bin")
    monkeypatch.setenv("PATH", "/nonexistent")
    assert scribe_executable(str(scribe)) == scribe
    assert scribe_executable(str(ROOT / "engine" / "__main__.py")) is None
    monkeypatch.setenv("PATH", str(scribe.parent))
    assert scribe_executable("scribe") == scribe
    assert scribe_executable(str(ROOT / "engine" / "__main__.py")) == scribe
