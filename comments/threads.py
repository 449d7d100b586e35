"""Pure functions that turn a flat list of comments into the thread a reader sees."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

PLACEHOLDERS = {
    "withdrawn": "This comment was withdrawn by a moderator",
    "deleted": "This comment was deleted by its author",
    "pending": "This comment is awaiting review",
}


@dataclass(frozen=True)
class Node:
    """The fields of a comment the tree needs; anything else rides along in ``data``."""

    id: int
    parent_id: int | None
    status: str
    author_id: int | None
    data: Any = None


def reply_depth(parent_depth: int, max_depth: int) -> int:
    """Depth a reply takes under a parent: one deeper, never beyond ``max_depth``."""
    return min(parent_depth + 1, max_depth)


def is_visible(node: Node, viewer_id: int | None) -> bool:
    """A comment shown in full: published, or held and the viewer is its author."""
    if node.status == "published":
        return True
    return node.status == "pending" and viewer_id is not None and node.author_id == viewer_id


def build_forest(
    roots: Iterable[Node],
    replies: Iterable[Node],
    viewer_id: int | None,
    render: Callable[[Node, bool], dict[str, Any]],
) -> list[dict[str, Any]]:
    """Nest ``replies`` under ``roots`` (roots keep their order, replies oldest first as given).

    A comment the viewer may not see is dropped, unless something under it is visible: then
    it stays as a placeholder so the conversation still reads. ``render(node, full)`` makes
    the dict for a comment, ``full`` False for a placeholder.
    """
    children: dict[int, list[Node]] = {}
    for node in replies:
        if node.parent_id is not None:
            children.setdefault(node.parent_id, []).append(node)

    def visit(node: Node) -> dict[str, Any] | None:
        kids = [out for child in children.get(node.id, ()) if (out := visit(child)) is not None]
        full = is_visible(node, viewer_id)
        if not full and not kids:
            return None
        item = render(node, full)
        item["replies"] = kids
        return item

    return [out for root in roots if (out := visit(root)) is not None]
