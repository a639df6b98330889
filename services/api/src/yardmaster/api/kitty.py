"""The turn queue's picture: a kitty drawn on the fly as SVG, so no network is ever needed."""

from __future__ import annotations

import hashlib

FUR = ("#f4a261", "#9c6644", "#6c757d", "#e9c46a", "#2b2d42", "#f1faee")
EYES = ("#2a9d8f", "#e76f51", "#4361ee", "#80b918")


def kitty_svg(name: str) -> str:
    """A 200x200 kitty whose colours and pose follow from ``name`` (same name, same kitty)."""
    digest = hashlib.sha256(name.encode()).digest()
    fur, eyes = FUR[digest[0] % len(FUR)], EYES[digest[1] % len(EYES)]
    tilt = digest[2] % 21 - 10
    return f"""<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 200" width="200"
 height="200">
<title>A kitty for {_escape(name)}</title>
<g transform="rotate({tilt} 100 110)">
<polygon points="45,75 60,20 95,60" fill="{fur}"/>
<polygon points="155,75 140,20 105,60" fill="{fur}"/>
<circle cx="100" cy="110" r="65" fill="{fur}"/>
<circle cx="75" cy="100" r="11" fill="#fff"/><circle cx="125" cy="100" r="11" fill="#fff"/>
<circle cx="75" cy="100" r="6" fill="{eyes}"/><circle cx="125" cy="100" r="6" fill="{eyes}"/>
<polygon points="93,125 107,125 100,133" fill="#e5989b"/>
<path d="M100 133 q-10 12 -22 4 M100 133 q10 12 22 4" stroke="#333" fill="none" stroke-width="2"/>
<path d="M60 125 h-35 M60 132 l-33 8 M140 125 h35 M140 132 l33 8" stroke="#333" stroke-width="2"/>
</g></svg>
"""


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
