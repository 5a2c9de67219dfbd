"""Text the mock source streams, cut into pieces the way a byte-level BPE tokenizer cuts it.

The passages mix what chat models really emit: prose with leading-space words, Markdown,
a code block, CJK, emoji, an HTTP example with CRLF line ends, and the strings that break
naive stream parsers (`data:`, `[DONE]`, U+2028).
"""

from __future__ import annotations

import re
from functools import cache

PASSAGES: tuple[str, ...] = (
    "Sure! Here's a quick overview of how streaming works in most chat APIs.\n\n"
    "1. The client sends a request and keeps the connection open.\n"
    "2. The server forwards each token as soon as the model produces it.\n"
    "3. A final message (often `data: [DONE]`) tells the client the answer is complete.\n\n"
    "If a proxy buffers the response, the user sees nothing until the very end, "
    "which feels much slower even though the total time is the same.",
    "```python\nasync def stream(client, prompt):\n"
    "    async for chunk in client.chat(prompt):\n"
    '        print(chunk.text, end="", flush=True)\n```\n\n'
    "The `flush=True` matters: without it, Python's stdout buffer hides the rhythm.",
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
    "Each event ends with a blank line; a line starting with data: carries the payload.",
    "東京の天気は晴れです。明日は少し雨が降るかもしれません。"
    "中文分词和日本語のトークンは、英語より多くのバイトを使います。",
    "Great question! 🎉 Streaming makes a response feel alive 🚀 — users start reading "
    "after the first few hundred milliseconds 👀 instead of waiting for the whole answer ✅.",
    "Line separators are rare but real:\u2028this sentence follows a U+2028, "
    "and JSON encoders disagree on whether to escape it.",
    "To summarise, pick the transport by three numbers: time to first token, "
    "how much delay it adds to each token, and what it costs per token in bytes, "
    "requests and CPU. Polling is simple but slow or wasteful; SSE, chunked HTTP and "
    "WebSockets push each token as it is made.",
)

# GPT-2-style pre-tokenisation: contractions, optional-space words, numbers, punctuation runs,
# whitespace runs (keeping the space that starts the next word).
_PRETOKEN = re.compile(r"'(?:[sdmt]|ll|ve|re)| ?[^\W\d_]+| ?\d{1,3}| ?[^\s\w]+|\s+(?!\S)|\s+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")
_SUBWORD = 5  # longest Latin piece before a word is split, like common BPE merges


def _split_piece(piece: str) -> list[str]:
    if _CJK.search(piece):
        return [piece[k : k + 2] for k in range(0, len(piece), 2)]
    if len(piece) <= _SUBWORD + 1:
        return [piece]
    return [piece[k : k + _SUBWORD] for k in range(0, len(piece), _SUBWORD)]


def tokenize(text: str) -> list[str]:
    """Cut text into token-like pieces whose concatenation is exactly the text."""
    return [sub for piece in _PRETOKEN.findall(text) for sub in _split_piece(piece)]


@cache
def corpus_tokens() -> tuple[str, ...]:
    """All passages as one long token sequence, separated by a paragraph break."""
    return tuple(tok for passage in PASSAGES for tok in [*tokenize(passage), "\n\n"])
