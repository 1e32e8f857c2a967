"""mkdocs hooks: fill pages from the code so they cannot drift from it.

``<!-- errors-tree -->`` becomes the error tree drawn in ``hermetic.errors``'s
docstring; ``<!-- security-md -->`` becomes the repository's ``SECURITY.md`` (or a
pointer to it while it does not exist).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _errors_tree() -> str:
    import hermetic.errors

    doc = hermetic.errors.__doc__ or ""
    _, _, rest = doc.partition("::\n")
    lines = []
    for line in rest.splitlines()[1:]:
        if line and not line.startswith("    "):
            break
        lines.append(line[4:])
    return "```text\n" + "\n".join(lines).strip("\n") + "\n```"


def _security() -> str:
    path = ROOT / "SECURITY.md"
    if not path.is_file():
        return "The security policy is in `SECURITY.md` at the root of the repository."
    text = path.read_text(encoding="utf-8")
    # Demote its headings one level: this page already has a title.
    lines = text.splitlines()
    return "\n".join("#" + line if line.startswith("#") else line for line in lines)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace the markers in *markdown*."""
    if "<!-- errors-tree -->" in markdown:
        markdown = markdown.replace("<!-- errors-tree -->", _errors_tree())
    if "<!-- security-md -->" in markdown:
        markdown = markdown.replace("<!-- security-md -->", _security())
    return markdown
