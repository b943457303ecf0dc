"""Conversation memory for one chat: the last N turns, nothing more."""

from __future__ import annotations

from collections import deque

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

MAX_ANSWER_CHARS_KEPT = 2000


class ChatMemory:
    """A bounded window of (question, answer) turns.

    >>> memory = ChatMemory(max_turns=1)
    >>> memory.add("first?", "one"); memory.add("second?", "two")
    >>> [m.content for m in memory.messages()]
    ['second?', 'two']
    """

    def __init__(self, max_turns: int = 6) -> None:
        self._turns: deque[tuple[str, str]] = deque(maxlen=max_turns)

    def add(self, question: str, answer: str) -> None:
        self._turns.append((question, answer[:MAX_ANSWER_CHARS_KEPT]))

    def messages(self) -> list[BaseMessage]:
        out: list[BaseMessage] = []
        for question, answer in self._turns:
            out.extend([HumanMessage(question), AIMessage(answer)])
        return out

    def __len__(self) -> int:
        return len(self._turns)
