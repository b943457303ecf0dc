from markdown_it import MarkdownIt

from chains.options import SearchOptions
from chains.retriever import Passage, Retrieval
from core.knowledge import KEYWORD_UNAVAILABLE, LIBRARY_OWNER, DocumentInfo
from tests.markdown_view import active_constructs, visible_text
from tests.ui.conftest import RecordingEmitter
from ui.chat_settings import SEARCH_TYPES, options_from_settings
from ui.render import citation_elements, cited_numbers, retrieval_summary, welcome_text


def test_welcome_names_the_documents_and_the_mode() -> None:
    docs = [
        DocumentInfo(source=f"d{i}.md", owner=LIBRARY_OWNER, chunks=2, added_at=1) for i in range(7)
    ]
    text = welcome_text(docs, 14, model_name=None)
    assert "**7 documents** (14 chunks)" in text and "and 2 more" in text
    assert "No language model is configured" in text
    assert "written by `gpt-x`" in welcome_text(docs, 14, model_name="gpt-x")
    assert "knowledge base is **empty**" in welcome_text([], 0, model_name=None)


def test_welcome_tells_how_to_upload_and_which_searches_there_are() -> None:
    """It said "switch between similarity and MMR search" after hybrid became the default
    and keyword search was added, and nothing of uploads or the commands."""
    text = visible_text(welcome_text([], 0, model_name=None))
    assert "Attach files" in text and "/docs" in text and "/remove NAME" in text
    for label in SEARCH_TYPES.values():
        assert (label if label != "mmr" else "hybrid + MMR") in text
    assert "similarity and MMR" not in text


def test_cited_numbers_in_order_and_in_range() -> None:
    assert cited_numbers("A [2] and [1][2], not [9] or [0].", available=4) == [2, 1]


async def test_citation_elements_are_named_by_number_and_show_passages_as_plain_text(
    chainlit_events: RecordingEmitter,
) -> None:
    raw = "See ![x](https://evil.example/p)\n__NOGLOBS__\n===\n0:text/x-diff\n```"
    passages = [
        Passage(n=1, source="a`b.pdf", page=3, score=0.91, text=raw),
        Passage(n=2, source="b.md", page=None, score=None, text="plain"),
    ]
    elements = citation_elements(passages, [2, 1])
    assert [e.name for e in elements] == ["[2]", "[1]"]
    second, first = (str(e.content) for e in elements)
    assert second.startswith("**Source:** `b.md` · **Score:** n/a (MMR)")
    assert "**Page:** 3" in first and "**Score:** 0.910" in first
    assert active_constructs(first) == []
    fences = [t for t in MarkdownIt("commonmark").parse(first) if t.type == "fence"]
    assert [t.content for t in fences] == [raw + "\n"]  # every character, as written
    assert "Source: a`b.pdf" in visible_text(first)
    assert all(e.display == "side" for e in elements)


async def test_a_markdown_passage_is_shown_formatted_without_images_links_or_html(
    chainlit_events: RecordingEmitter,
) -> None:
    """Markdown and HTML pages (stored as Markdown) showed their markup as raw code."""
    text = (
        "Guide › Setup\n\n1. **Ingest.** Run `ingest`.\n2. See [docs](https://evil.example/d)"
        " ![t](https://evil.example/p) <img src=//evil.example/i>\n"
    )
    [element] = citation_elements([Passage(1, "guide.html", None, 0.5, text)], [1])
    content = str(element.content)
    assert active_constructs(content) == []
    tokens = [t.type for t in MarkdownIt("commonmark").parse(content)]
    assert "ordered_list_open" in tokens and "fence" not in tokens
    assert "<strong>Ingest.</strong>" in MarkdownIt("commonmark").render(content)
    assert visible_text(content).endswith(
        "Guide › Setup Ingest. Run ingest. See docs [image removed: t] <img src=//evil.example/i>"
    )  # the raw HTML as inert text, as in answers


async def test_the_citation_panel_names_title_and_section_once(
    chainlit_events: RecordingEmitter,
) -> None:
    """The panel gave the section in its facts and again, with the page title, as the
    passage's first line."""
    text = "Coroutines and Tasks › Timeouts\n\nUse `asyncio.timeout()`."
    [element] = citation_elements(
        [
            Passage(
                1,
                "asyncio-task.html",
                None,
                0.5,
                text,
                section="Timeouts",
                title="Coroutines and Tasks",
            )
        ],
        [1],
    )
    assert visible_text(str(element.content)) == (
        "Source: asyncio-task.html · Title: Coroutines and Tasks · Section: Timeouts · "
        "Score: 0.500 Use asyncio.timeout()."
    )


def test_file_names_with_markdown_render_literally() -> None:
    name = "![s](https:HOST?x) [l](//HOST/k) <img src=//HOST/i>.md"
    welcome = welcome_text(
        [DocumentInfo(source=name, owner=LIBRARY_OWNER, chunks=1, added_at=1)], 1, None
    )
    summary = retrieval_summary(
        Retrieval("q", [Passage(n=1, source=name, page=2, score=0.5, text="t")], 1, "dense")
    )
    for shown in (welcome, summary):
        assert active_constructs(shown) == [], shown
    assert f"documents (1 chunks): {name}." in visible_text(welcome)
    assert f"[1] {name}, page 2 · score 0.50" in visible_text(summary)


def test_retrieval_summary() -> None:
    retrieval = Retrieval(
        "q", [Passage(n=1, source="a", page=None, score=0.5, text="t")], 12.3, "dense"
    )
    assert retrieval_summary(retrieval) == (
        "Found 1 passages in 12 ms (dense search):\n- [1] a · score 0.50"
    )


def test_retrieval_summary_shows_each_routes_rank_and_a_fallback() -> None:
    passages = [
        Passage(1, "a.md", None, 0.0325, "t", ranks={"dense": 2, "keyword": 1}),
        Passage(2, "b.pdf", 4, 0.0161, "u", ranks={"keyword": 2}),
    ]
    hybrid = retrieval_summary(Retrieval("q", passages, 20.0, "hybrid"))
    assert hybrid.splitlines() == [
        "Found 2 passages in 20 ms (hybrid search: keyword + dense, fused):",
        "- [1] a.md · score 0.03 · dense #2, keyword #1",
        "- [2] b.pdf, page 4 · score 0.02 · keyword #2",
    ]
    fallback = retrieval_summary(Retrieval("q", [], 5.0, "dense", notice=KEYWORD_UNAVAILABLE))
    assert fallback.startswith("No passages found (5 ms, dense search).")
    assert fallback.endswith(f"*{KEYWORD_UNAVAILABLE}*")


def test_settings_panel_values_become_validated_options() -> None:
    current = SearchOptions()
    options = options_from_settings(
        {
            "search_type": "mmr",
            "k": 6,
            "fetch_k": 30,
            "lambda_mult": 0.30000001,
            "sources": " a.pdf , ,b.md ",
        },
        current,
    )
    assert options == SearchOptions(
        search_type="mmr", k=6, fetch_k=30, lambda_mult=0.3, sources=("a.pdf", "b.md")
    )
    assert options_from_settings({"search_type": "nonsense"}, current) == current
