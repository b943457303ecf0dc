"""Turning passages into prompt context, and into the retrieval-only answer."""

from __future__ import annotations

from chains.markdown_escape import markdown_text
from chains.retriever import Passage
from chains.safety import plain_text

NO_MODEL_NOTICE = (
    "**No language model is configured**, so instead of a written answer here are the most "
    "relevant passages from the knowledge base. To get written answers, set "
    "`OPENAI_API_KEY`, or `OPENAI_BASE_URL` (and `LLM_MODEL`) for an OpenAI-compatible "
    "server such as Ollama or vLLM, and restart the app."
)
EMPTY_KB_ANSWER = (
    "The knowledge base is empty, so I have nothing to answer from yet. Attach files to "
    "this chat, or ingest documents with `python -m ingest PATH`, and ask again."
)
NOTHING_FOUND_ANSWER = (
    "I don't know: no passage in the knowledge base matches this question within the current "
    "search scope and source filter (see the settings)."
)
EXCERPT_CHARS = 400


def passages_for_prompt(passages: list[Passage]) -> str:
    """Number each passage [n] and fence it; the text is data, fenced in its own tags."""
    return "\n\n".join(
        f'<passage n="{p.n}" source="{_attr(p.label)}">\n{_unfence(p.text)}\n</passage>'
        for p in passages
    )


def retrieval_only_answer(passages: list[Passage]) -> str:
    """A useful answer without a model: the best passages, cited and excerpted."""
    if not passages:
        return NOTHING_FOUND_ANSWER
    return f"{NO_MODEL_NOTICE}\n\n{cited_excerpts(passages)}"


def model_failed_answer(passages: list[Passage], reason: str, *, cut_off: bool) -> str:
    """What follows (or replaces, when nothing was written yet) an answer the model could
    not give: the reason in plain words, then the passages found, cited and excerpted."""
    if cut_off:
        lead = (
            f"\n\n*(The answer was cut off: {markdown_text(reason)})* "
            "**The passages it was based on:**"
        )
    else:
        lead = (
            f"**The language model could not answer:** {markdown_text(reason)} "
            "Here are the most relevant passages instead."
        )
    return f"{lead}\n\n{cited_excerpts(passages)}"


def cited_excerpts(passages: list[Passage]) -> str:
    """Each passage as a citation `[n]` with its label and score, and an excerpt."""
    lines = []
    for p in passages:
        score = f" · score {p.score:.2f}" if p.score is not None else ""
        lines.append(f"[{p.n}] **{markdown_text(p.label)}**{score}")
        lines.append(f"> {markdown_text(excerpt(readable_text(p)))}")
        lines.append("")
    return "\n".join(lines).rstrip()


def readable_text(passage: Passage) -> str:
    """A passage's words as a reader sees them (`Passage.body`): a Markdown one's without
    its markup (asterisks, hashes and link targets printed as written read as noise)."""
    return plain_text(passage.body) if passage.written_in_markdown else passage.body


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The start of a passage on one line (whitespace collapsed), cut at a word."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > limit // 2 else limit].rstrip() + " …"


def _attr(value: str) -> str:
    return value.replace('"', "'").replace("<", "(").replace(">", ")")


def _unfence(text: str) -> str:
    """A passage may not close its own fence and pose as instructions."""
    return text.replace("</passage>", "</ passage>").replace("<passage", "< passage")
