"""The pure tree builder: nesting, order, placeholders, depth."""

from comments.threads import PLACEHOLDERS, Node, build_forest, reply_depth


def render(node: Node, full: bool) -> dict:
    return {"id": node.id, "full": full}


def test_nests_replies_in_order() -> None:
    roots = [Node(1, None, "published", 10), Node(2, None, "published", 11)]
    replies = [
        Node(3, 1, "published", 11),
        Node(4, 3, "published", 10),
        Node(5, 1, "published", 12),
    ]
    forest = build_forest(roots, replies, None, render)
    assert [r["id"] for r in forest] == [1, 2]
    assert [r["id"] for r in forest[0]["replies"]] == [3, 5]
    assert forest[0]["replies"][0]["replies"][0]["id"] == 4


def test_hidden_comment_with_visible_reply_becomes_placeholder() -> None:
    roots = [Node(1, None, "withdrawn", 10), Node(2, None, "deleted", 10)]
    replies = [Node(3, 1, "published", 11)]
    forest = build_forest(roots, replies, None, render)
    assert forest == [{"id": 1, "full": False, "replies": [{"id": 3, "full": True, "replies": []}]}]


def test_pending_visible_only_to_author() -> None:
    roots = [Node(1, None, "pending", 10)]
    assert build_forest(roots, [], None, render) == []
    assert build_forest(roots, [], 11, render) == []
    assert build_forest(roots, [], 10, render)[0]["full"] is True


def test_reply_depth_is_capped() -> None:
    assert reply_depth(0, 6) == 1
    assert reply_depth(5, 6) == 6
    assert reply_depth(6, 6) == 6
    assert set(PLACEHOLDERS) == {"withdrawn", "deleted", "pending"}
