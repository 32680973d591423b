"""One style sheet (issues 14, 16): templates/style.css serves the published pages, the
web forms and the console; an instance overrides it by giving templates/style.css, and
an override under the old names (pages/style.css, web/style.css) is still honoured."""

from __future__ import annotations

from publisher.templating import environment, shipped_templates, style_sheet

PAGES, WEB = "pages/style.css", "web/style.css"


def env_over(instance):
    return environment([instance, shipped_templates()])


def test_the_shipped_sheet_holds_both_sets_of_rules(tmp_path):
    env = env_over(tmp_path)
    assert style_sheet(env, PAGES) == style_sheet(env, WEB) == "style.css"
    css = env.get_template("style.css").render()
    for rule in (".teaser {", ".subscribe {", ".card {", "label.choice {", ".console-nav {",
                 "svg.chart", "prefers-color-scheme: dark", "max-width: 30rem"):
        assert rule in css, rule
    assert not (shipped_templates() / PAGES).exists()
    assert not (shipped_templates() / WEB).exists()


def test_an_old_override_applies_to_its_own_pages_only(tmp_path):
    (tmp_path / "pages").mkdir()
    (tmp_path / PAGES).write_text("body { color: red; }\n")
    env = env_over(tmp_path)
    assert style_sheet(env, PAGES) == PAGES
    assert style_sheet(env, WEB) == "style.css"


def test_the_new_override_wins_over_the_old_names(tmp_path):
    for name in (PAGES, WEB):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("body { color: red; }\n")
    (tmp_path / "style.css").write_text("body { color: blue; }\n")
    env = env_over(tmp_path)
    assert style_sheet(env, PAGES) == style_sheet(env, WEB) == "style.css"
    assert "blue" in env.get_template("style.css").render()
