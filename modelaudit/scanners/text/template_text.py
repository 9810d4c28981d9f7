"""Text a chat template writes into the conversation that the user did not write.

A template turns the user's messages into the prompt; anything it adds on its own reaches
the model as if it were part of the conversation. Real templates add role markers, a short
default system prompt ("You are a helpful assistant"), dates and tool-use instructions. An
injected template adds instructions to deceive or exfiltrate ("ignore previous
instructions", "do not tell the user", "send the API key to ..."), commands and URLs, or a
tool call with a fixed function and arguments that the model then sees as its own.
"""

from __future__ import annotations

import re
from typing import Final

_INSTRUCTIONS: Final = (
    re.compile(
        r"\b(?:ignore|disregard|forget|override)\b[^.\n]{0,40}?\b(?:previous|prior|above|earlier|"
        r"all|any|other|system|user'?s?|original)\b[^.\n]{0,30}?\b(?:instructions?|prompts?|rules|"
        r"messages?|guidelines|directions)\b",
        re.I,
    ),
    re.compile(
        r"\b(?:do not|don't|never)\s+(?:tell|reveal|mention|disclose|inform|let)\b"
        r"[^.\n]{0,40}?\b(?:user|anyone|human|them)\b",
        re.I,
    ),
    re.compile(r"\bwithout\s+(?:telling|informing|alerting|asking)\b", re.I),
    re.compile(r"\b(?:secretly|covertly|surreptitiously)\b", re.I),
    re.compile(r"\bexfiltrat\w*", re.I),
    re.compile(
        r"\b(?:send|post|upload|forward|e-?mail|transmit|include)\b[^.\n]{0,60}?"
        r"\b(?:passwords?|api[ _-]?keys?|tokens?|credentials?|secrets?|private keys?|ssh keys?|"
        r"cookies?|env(?:ironment)? variables?)\b",
        re.I,
    ),
    re.compile(r"\b(?:curl|wget)\s+\S|\brm\s+-rf\b|\|\s*(?:ba)?sh\b|base64\s+-d\b", re.I),
    re.compile(r"\bhttps?://[^\s\"'<>]+", re.I),
)
#: A tool call spelled out in the template itself: fixed function name, not a variable.
_TOOL_CALLS: Final = (
    re.compile(r"<tool_call>\s*\{\s*\"name\"\s*:\s*\"[^\"{}]+\"", re.I),
    re.compile(r"\[TOOL_CALLS\]\s*\[\s*\{\s*\"name\"\s*:\s*\"[^\"{}]+\"", re.I),
    re.compile(r"<\|python_tag\|>\s*[A-Za-z_][\w.]*\s*\("),
    re.compile(r"<function=[A-Za-z_][\w.]*>"),
    re.compile(r"\"type\"\s*:\s*\"function\"\s*,\s*\"function\"\s*:\s*\{\s*\"name\"\s*:\s*\"\w"),
    re.compile(r"<\|tool_call(?:s_section)?_begin\|>\s*(?:functions\.)?[A-Za-z_]\w*", re.I),
)
_MAX_TEXT: Final = 1 << 20


#: In text a template writes only when the user passed tools, these are the tool-use
#: instructions and format examples real templates carry; the rest is still judged there.
_TOOL_DOCUMENTATION: Final = frozenset({1, 2, 7})


def injected(texts: list[tuple[str, bool]]) -> list[tuple[str, str]]:
    """(kind, excerpt) for each piece of template text that injects into the conversation.

    Each text comes with whether the template writes it only when tools are given.
    """
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    total = 0
    for text, for_tools in texts:
        total += len(text)
        if total > _MAX_TEXT:
            break
        for kind, patterns in (("tool call", _TOOL_CALLS), ("instructions", _INSTRUCTIONS)):
            for i, pattern in enumerate(patterns):
                if for_tools and (kind == "tool call" or i in _TOOL_DOCUMENTATION):
                    continue
                m = pattern.search(text)
                if m is None:
                    continue
                start = max(0, m.start() - 40)
                excerpt = " ".join(text[start : m.end() + 40].split())[:160]
                if excerpt not in seen:
                    seen.add(excerpt)
                    out.append((kind, excerpt))
                break
    return out


__all__ = ["injected"]
