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
- ``slow-reload``: rereads compile_commands.json 0.3 s after it is told the file changed, as
  sourcekit-lsp's build system does in the background. ``workspace/synchronize`` with
  ``buildServerUpdates`` answers once that is done.

In every mode completion also offers the names of the compile command's ``-I`` folders as read
last: what the server would know of the modules found through them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
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
# The arguments of the compile command as last read, and the reread still to come.
arguments_read: list[str] = []
reloading: asyncio.Task[None] | None = None


def _read_arguments() -> None:
    commands = Path.cwd() / "compile_commands.json"
    arguments_read[:] = json.loads(commands.read_text())[0]["arguments"] if commands.exists() else []


@server.feature(lsp.INITIALIZED)
def initialized(params: lsp.InitializedParams) -> None:
    """Read the compile command, as a server does when it opens the workspace."""
    _read_arguments()


@server.feature(lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES)
async def files_changed(params: lsp.DidChangeWatchedFilesParams) -> None:
    """Read the compile command again, at once or (``slow-reload``) 0.3 s later."""
    global reloading  # noqa: PLW0603 - one task in a one-file fake
    if MODE != "slow-reload":
        _read_arguments()
        return

    async def later() -> None:
        await asyncio.sleep(0.3)
        _read_arguments()

    reloading = asyncio.get_running_loop().create_task(later())


@server.feature("workspace/synchronize")
async def synchronize(*arguments: object) -> dict[str, object]:
    """Answer once the build settings' updates asked for are done (pygls passes a custom method the server first)."""
    if reloading is not None and getattr(arguments[-1], "buildServerUpdates", False):
        await reloading
    return {}


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
    searched = [Path(folder).name for flag, folder in itertools.pairwise(arguments_read) if flag == "-I"]
    for number, text in [*enumerate(document.lines), (-1, " ".join(searched))]:
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
