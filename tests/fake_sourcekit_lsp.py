"""A tiny stand-in for sourcekit-lsp, for fast tests of the client's plumbing.

``python fake_sourcekit_lsp.py MODE [MARKER]``. Completion offers every word of the document
that starts with the word before the cursor (detail: the line it is on); hover shows the word
under the cursor. MODE changes that:

- ``normal``: as above.
- ``hang``: answers the first completion, then blocks forever in every completion and hover,
  so not even ``$/cancelRequest`` is answered.
- ``hang-init``: never answers initialize.
- ``crash-once``: exits with status 3 on the first completion while MARKER does not exist
  (it creates MARKER first, so the restarted server behaves normally).
- ``slow-first``: takes 2 s over the first completion, its event loop blocked, as sourcekit-lsp
  loading the standard library and Foundation for the kernel's warm-up.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

MODE = sys.argv[1] if len(sys.argv) > 1 else "normal"
MARKER = Path(sys.argv[2]) if len(sys.argv) > 2 else None
WORD = re.compile(r"[A-Za-z_]\w*")

server = LanguageServer("fake-sourcekit-lsp", "0")
answered = 0


async def _forever() -> None:
    await asyncio.Event().wait()


def _block() -> None:
    # A blocked event loop cannot even answer $/cancelRequest, like a wedged sourcekitd.
    time.sleep(3600)


if MODE == "hang-init":

    @server.feature(lsp.INITIALIZE)
    async def initialize(params: lsp.InitializeParams) -> None:
        """Never answer."""
        await _forever()


@server.feature(lsp.TEXT_DOCUMENT_COMPLETION)
async def completion(params: lsp.CompletionParams) -> lsp.CompletionList:
    """Offer the document's words that start with the word before the cursor."""
    global answered  # noqa: PLW0603 - one counter in a one-file fake
    if MODE == "hang" and answered:
        _block()
    if MODE == "slow-first" and not answered:
        time.sleep(2)
    answered += 1
    if MODE == "crash-once" and MARKER is not None and not MARKER.exists():
        MARKER.touch()
        os._exit(3)
    document = server.workspace.get_text_document(params.text_document.uri)
    line = document.lines[params.position.line] if params.position.line < len(document.lines) else ""
    # The fake works in code points; tests that need UTF-16 columns use the real server.
    before = line[: params.position.character]
    prefix = re.search(r"\w*$", before)
    start = params.position.character - (len(prefix.group(0)) if prefix else 0)
    typed = prefix.group(0) if prefix else ""
    replaced = lsp.Range(
        start=lsp.Position(line=params.position.line, character=start),
        end=params.position,
    )
    items = []
    seen = set()
    for number, text in enumerate(document.lines):
        for word in WORD.findall(text):
            if word.startswith(typed) and word != typed and word not in seen:
                seen.add(word)
                items.append(
                    lsp.CompletionItem(
                        label=word,
                        kind=lsp.CompletionItemKind.Variable,
                        detail=f"line {number}",
                        text_edit=lsp.TextEdit(range=replaced, new_text=word),
                    )
                )
    return lsp.CompletionList(is_incomplete=False, items=items)


@server.feature(lsp.TEXT_DOCUMENT_HOVER)
async def hover(params: lsp.HoverParams) -> lsp.Hover | None:
    """Show the word under the cursor as a declaration."""
    if MODE == "hang":
        _block()
    document = server.workspace.get_text_document(params.text_document.uri)
    word = document.word_at_position(params.position)
    if not word:
        return None
    value = f"```swift\nlet {word}\n```\n\nThe word at line {params.position.line}."
    return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=value))


if __name__ == "__main__":
    server.start_io()
