"""A page's Content-Security-Policy: scripts from this server's files; an inline script or
style only by the hash of what the page ships; data blocks are not scripts."""

from __future__ import annotations

import base64
import hashlib

import pytest

from yardmaster.api.contentpolicy import inline_hashes, page_policy


def sha(text: str) -> str:
    return f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'"


def directive(policy: str, name: str) -> str:
    return next(d for d in policy.split("; ") if d.startswith(name + " "))


def test_a_page_without_inline_code_runs_only_its_own_files_and_is_never_framed() -> None:
    policy = page_policy('<script type="module" src="/static/js/main.js"></script>')

    assert directive(policy, "script-src") == "script-src 'self'"
    assert directive(policy, "style-src") == "style-src 'self'"
    assert "frame-ancestors 'none'" in policy
    assert "object-src 'none'" in policy
    assert "unsafe" not in policy


def test_inline_scripts_and_styles_are_allowed_by_their_hash_and_data_blocks_are_not_scripts() -> (
    None
):
    page = (
        '<style>b{color:red}</style><script type="application/json" id="c">{"a": 1}</script>'
        "<script>go()</script><SCRIPT type=module>run('</scr' + 'ipt>')</SCRIPT>"
    )

    assert inline_hashes(page) == {
        "script": [sha("go()"), sha("run('</scr' + 'ipt>')")],
        "style": [sha("b{color:red}")],
    }
    assert sha('{"a": 1}') not in page_policy(page)


def test_a_closing_tag_inside_a_script_ends_it_as_a_browser_reads_it() -> None:
    page = "<script>a = '<style>x</style>'</script><style>p{}</style>"

    assert inline_hashes(page) == {"script": [sha("a = '<style>x</style>'")], "style": [sha("p{}")]}


@pytest.mark.parametrize("style", [".logo{fill:#fff}"])
def test_styles_a_pages_own_script_creates_are_allowed_by_hash(style: str) -> None:
    policy = page_policy("<p>", created_styles=[style])

    assert directive(policy, "style-src") == f"style-src 'self' {sha(style)}"
