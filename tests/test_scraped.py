"""The scraped page-text parser: the seed file, the variations real dumps have, and
properties that hold for any input."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from publisher.errors import InputError
from publisher.ingest.scraped import format_scraped, is_meta, join_articles, parse_scraped

CAPTION = "Firefighters walk past a burned house in Lindenau, Sunday, Nov. 22, 2026. (AP)"


def article_text(title="Bridge Reopens After Repairs", caption=CAPTION,
                 paragraphs=("First paragraph.", "Second paragraph.")):
    return format_scraped(title, list(paragraphs), caption)


def test_seed_file_gives_both_articles(seed_bytes):
    first, second = parse_scraped(seed_bytes, "seed.txt")
    assert first.title == "Russia and Belarus to Hold Joint War Games Early Next Year"
    assert second.title == "Musk Says Some of His Posts about Trump ‘Went Too Far’"
    assert (first.credit, second.credit) == ("AP", "AP")
    assert (len(first.paragraphs), len(second.paragraphs)) == (9, 11)
    caption_lines = [line.strip() for line in seed_bytes.decode().splitlines()
                     if line.strip().endswith("(AP)")]
    assert first.captions == (caption_lines[0],)
    assert second.captions == (caption_lines[4],)
    assert first.paragraphs[0].startswith("Russian President Vladimir Putin said Wednesday")
    assert second.paragraphs[-1].endswith("showing Trump's remarks.")
    # Lines in the seed end in no-break spaces; paragraphs come back trimmed.
    assert all(p == p.strip() for p in first.paragraphs + second.paragraphs)
    assert "TT" not in first.paragraphs and "20" not in second.paragraphs


def test_ids_and_slugs_are_stable_and_distinct(seed_bytes):
    once = parse_scraped(seed_bytes, "seed.txt")
    again = parse_scraped(seed_bytes, "seed.txt")
    assert [a.id for a in once] == [a.id for a in again]
    assert len({a.id for a in once}) == 2
    assert once[1].slug == "musk-says-some-of-his-posts-about-trump-went-too-far"


@pytest.mark.parametrize("transform", [
    pytest.param(lambda t: t.replace("\n", "\r\n"), id="crlf"),
    pytest.param(lambda t: "\ufeff" + t, id="bom"),
    pytest.param(lambda t: t.replace("\n", "   \t\n"), id="trailing-whitespace"),
    pytest.param(lambda t: t.replace("\n\n\n", "\n \n\t\n  \n\n"), id="blank-lines-of-spaces"),
])
def test_layout_variations_parse_the_same(transform):
    text = join_articles([article_text(), article_text("Second Story", None, ("Body.",))])
    plain = parse_scraped(text.encode(), "x.txt")
    varied = parse_scraped(transform(text).encode("utf-8"), "x.txt")
    assert [(a.title, a.captions, a.paragraphs) for a in varied] == \
           [(a.title, a.captions, a.paragraphs) for a in plain]
    assert len(plain) == 2


def test_cp1252_text_is_decoded_not_dropped():
    text = article_text("Café Owners “Cautiously Optimistic”", None,
                        ("Prices rose 5 € — again.", "Señora Núñez agreed."))
    (article,) = parse_scraped(text.encode("cp1252"), "x.txt")
    assert article.title == "Café Owners “Cautiously Optimistic”"
    assert article.paragraphs == ("Prices rose 5 € — again.", "Señora Núñez agreed.")


def test_latin1_bytes_undefined_in_cp1252_survive():
    (article,) = parse_scraped(b"Title \x81 here\n\nBody \xe9t\xe9\n", "x.txt")
    assert article.title == "Title \x81 here" and article.paragraphs == ("Body été",)


def test_utf16_with_bom():
    (article,) = parse_scraped(article_text().encode("utf-16"), "x.txt")
    assert article.title == "Bridge Reopens After Repairs"


def test_right_to_left_script():
    title = "الأمطار الغزيرة تغلق الطرق في العاصمة"
    body = ("أعلنت السلطات إغلاق عدد من الطرق الرئيسية بسبب الأمطار.", "وقال متحدث إن الفرق تعمل.")
    (article,) = parse_scraped(article_text(title, "سيارات تعبر شارعا غمرته المياه. (AP)",
                                            body).encode(), "ar.txt")
    assert article.title == title and article.paragraphs == body
    assert article.credit == "AP"
    assert article.slug.startswith("article-")  # no ASCII letters to make a slug from


def test_header_block_once_and_no_furniture():
    text = (f"Storm Closes Schools\n\n{CAPTION}\n\n"
            "Schools closed on Monday.\n\nThey reopen Wednesday.\n")
    (article,) = parse_scraped(text.encode(), "x.txt")
    assert article.captions == (CAPTION,)
    assert article.paragraphs == ("Schools closed on Monday.", "They reopen Wednesday.")


def test_no_caption_at_all():
    (article,) = parse_scraped(b"Plain Title\n\nOnly a body.\n", "x.txt")
    assert article.caption is None and article.credit is None
    assert article.paragraphs == ("Only a body.",)


def test_caption_with_photographer_credit():
    caption = "A man walks his dog on the beach. (AP Photo/Jane Doe)"
    (article,) = parse_scraped(article_text(caption=caption).encode(), "x.txt")
    assert article.credit == "AP Photo/Jane Doe" and article.caption == caption


def test_body_paragraph_equal_to_title_is_kept():
    title = "Night Trains Return"
    paragraphs = ("They run from May.", title, "Tickets are on sale.")
    (article,) = parse_scraped(article_text(title, CAPTION, paragraphs).encode(), "x.txt")
    assert article.paragraphs == paragraphs


def test_body_paragraph_that_looks_like_furniture_is_kept():
    paragraphs = ("Scores after the first half:", "20", "TT")
    (article,) = parse_scraped(article_text(paragraphs=paragraphs).encode(), "x.txt")
    assert article.paragraphs == paragraphs


def test_very_long_body():
    paragraphs = tuple(f"Paragraph {i} " + "word " * 200 for i in range(2000))
    (article,) = parse_scraped(article_text(paragraphs=paragraphs).encode(), "x.txt")
    assert len(article.paragraphs) == 2000
    assert article.paragraphs[-1] == paragraphs[-1].strip()


def test_same_title_twice_in_one_file_gets_two_ids():
    text = join_articles([article_text(), article_text()])
    first, second = parse_scraped(text.encode(), "x.txt")
    assert first.id != second.id


@pytest.mark.parametrize("data, reason", [
    (b"", "no article found"),
    (b"   \n\n \t\n", "no article found"),
    (b"Just a title line\n", "no body paragraphs"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file"),
])
def test_files_without_articles_say_why(data, reason):
    with pytest.raises(InputError, match=reason):
        parse_scraped(data, "bad.txt")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_any_bytes_give_articles_or_a_clear_error(data):
    try:
        articles = parse_scraped(data, "fuzz.txt")
    except InputError as exc:
        assert exc.reason
    else:
        assert articles and all(a.title and a.paragraphs for a in articles)


# Lines of text as a scraper would copy them: no line breaks, no surrounding space.
line_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1,
    max_size=80,
).map(lambda s: " ".join(s.split())).filter(lambda s: s and "\ufeff" not in s)
credited = st.tuples(line_text, st.sampled_from(["AP", "Reuters", "AP Photo/Jo Ng"])).map(
    lambda pair: f"{pair[0]} ({pair[1]})")


@st.composite
def scraped_articles(draw):
    title = draw(line_text)
    caption = draw(st.none() | credited)
    paragraphs = draw(st.lists(line_text, min_size=1, max_size=8))
    # The format cannot tell a first paragraph that looks like a caption or furniture
    # from a header line, nor a title repeated right under the header from the header's
    # second copy: such input is ambiguous, not just unlikely, so it is not generated.
    assume(not is_meta([paragraphs[0]], (caption,) if caption else ()))
    assume(paragraphs[0] != title)
    return title, caption, tuple(paragraphs)


@pytest.mark.slow  # 200 generated sites, several seconds
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(scraped_articles(), min_size=1, max_size=4))
def test_generated_articles_parse_back_equal(generated):
    text = join_articles([format_scraped(t, list(p), c) for t, c, p in generated])
    parsed = parse_scraped(text.encode(), "gen.txt")
    assert [(a.title, a.caption, a.paragraphs) for a in parsed] == generated
