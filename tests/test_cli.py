"""The command line through click's runner, and the README's promises about it."""

from __future__ import annotations

import json
import re

import click
import pytest

from publisher.cli import cli
from tests.support import REPO, SEED


def all_commands(group: click.Group, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from all_commands(command, (*prefix, name))


@pytest.mark.parametrize("path", list(all_commands(cli)), ids=" ".join)
def test_every_command_has_help(run_cli, path):
    result = run_cli(*path, "--help")
    assert result.exit_code == 0 and "Usage:" in result.output
    assert cli.get_command(click.Context(cli), path[0]).help


def readme_commands() -> set[tuple[str, ...]]:
    """Every `publisher ...` command line in the README's code blocks and code spans."""
    text = (REPO / "README.md").read_text()
    snippets = re.findall(r"```[a-z]*\n(.*?)```", text, re.S) + re.findall(r"`([^`\n]+)`", text)
    found = set()
    for snippet in snippets:
        for segment in re.split(r"&&|\n|;|\|", snippet):
            match = re.match(r"\s*(?:\w+=\S+\s+)*(?:\S*/)?publisher(\s.*)?$", segment)
            if not match:
                continue
            words = re.sub(r"(-C|--time)\s+\S+", "", match[1] or "").split()
            words = [w for w in words if not w.startswith("-")]
            path, group = [], cli
            for word in words:
                if not isinstance(group, click.Group):
                    break
                path.append(word)
                group = group.commands.get(word)
            found.add(tuple(path))
    return found


def test_readme_names_only_real_commands(run_cli):
    names = readme_commands()
    assert ("run",) in names and ("init",) in names
    for path in names:
        command = cli
        for word in path:
            assert isinstance(command, click.Group) and word in command.commands, \
                f"the README names `publisher {' '.join(path)}`, which does not exist"
            command = command.commands[word]
        assert run_cli(*path, "--help").exit_code == 0


def test_readme_test_command_is_what_ci_runs():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    test_cmd = re.search(r'^TEST_CMD="(.+)"$', ci, re.M)[1]
    blocks = re.findall(r"```(?:sh|bash)?\n(.*?)```", readme, re.S)
    assert test_cmd in blocks[1], "the README's second command must be the CI test command"


def test_init_then_run_with_dash_c(run_cli, tmp_path):
    site = tmp_path / "site"
    assert run_cli("init", site).exit_code == 0
    (site / "articles" / "a.txt").write_text("Title\n\nBody.\n")
    result = run_cli("-C", site, "run")
    assert result.exit_code == 0
    assert result.output.strip().splitlines()[0] == \
        "ingest: 1 new, 0 updated, 0 unchanged, 0 quarantined"
    # -C also works after the command name.
    result = run_cli("ingest", "-C", site)
    assert result.output.strip() == "ingest: 0 new, 0 updated, 1 unchanged, 0 quarantined"


def test_parse_prints_json_lines_and_stores_nothing(run_cli, tmp_path):
    if not SEED.exists():
        pytest.skip("shared seed absent")
    (tmp_path / "publisher.toml").write_text("")
    result = run_cli("-C", tmp_path, "parse", SEED)
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [len(a["paragraphs"]) for a in lines] == [9, 11]
    assert {a["credit"] for a in lines} == {"AP"}
    for article in lines:
        assert {"title", "caption", "credit", "paragraphs", "slug", "id"} <= set(article)
    assert not (tmp_path / "publisher.db").exists()


def test_parse_reports_bad_files_and_goes_on(run_cli, tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("Title\n\nBody.\n")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    (tmp_path / "publisher.toml").write_text("")
    result = run_cli("-C", tmp_path, "parse", empty, good, tmp_path / "missing.txt")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["title"] == "Title"
    assert f"{empty}: empty file" in result.stderr
    assert f"{tmp_path / 'missing.txt'}: no such file" in result.stderr


def test_bad_setting_is_one_line_exit_2(run_cli, tmp_path):
    (tmp_path / "publisher.toml").write_text('[mail]\ntransport = "pigeon"\n')
    result = run_cli("-C", tmp_path, "run")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "publisher: setting mail.transport = 'pigeon' is not valid: expected maildir or smtp"]
    assert "Traceback" not in result.output


def test_config_shows_environment_overrides(run_cli, tmp_path):
    (tmp_path / "publisher.toml").write_text("")
    result = run_cli("-C", tmp_path, "config", env={"PUBLISHER_FEEDS__ITEMS": "7"})
    assert "items = 7" in result.output


def test_the_clock_can_be_given_and_a_bad_time_is_one_line(run_cli, instance):
    added = run_cli("--time", "2026-01-05T08:30:00+01:00", "-C", instance, "subscribers",
                    "add", "ada@example.org", "--confirmed")
    assert added.exit_code == 0, added.output
    shown = run_cli("-C", instance, "subscribers", "show", "ada@example.org").stdout
    # The clock starts at the given time and runs on: a fraction of a second later.
    assert re.search(r"^created: +2026-01-05T07:30:0\d", shown, re.M), shown
    for bad in ("tomorrow", "2026-01-05T08:30:00"):  # no offset: which zone?
        result = run_cli("--time", bad, "-C", instance, "status")
        assert result.exit_code == 2
        (line,) = result.stderr.strip().splitlines()[-1:]
        assert "--time" in line and bad in line and "Traceback" not in result.output


def test_the_clock_comes_from_the_environment_too(run_cli, instance):
    run_cli("-C", instance, "subscribers", "add", "bo@example.org", "--confirmed",
            env={"PUBLISHER_TIME": "2027-02-28T23:00:00Z"})
    shown = run_cli("-C", instance, "subscribers", "show", "bo@example.org").stdout
    # The clock starts at the given time and runs on: a moment later.
    assert re.search(r"^created: +2027-02-28T23:00:0\d", shown, re.M), shown
