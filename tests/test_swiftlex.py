"""Swift literals the kernel writes; no LLDB."""

from __future__ import annotations

import pytest

from swift_kernel.swiftlex import swift_literal


@pytest.mark.parametrize(
    ("text", "literal"),
    [
        ("plain", '"plain"'),
        ("caf\u00e9 \U0001f600", '"caf\u00e9 \U0001f600"'),  # as they are: Swift has no \u00e9 escape
        ('say "hi" \\ bye', '"say \\"hi\\" \\\\ bye"'),
        ("tab\tnew\nline\rnul\0", '"tab\\tnew\\nline\\rnul\\0"'),
        ("bell\x07del\x7f", '"bell\\u{7}del\\u{7f}"'),
        ("\\(notInterpolated)", '"\\\\(notInterpolated)"'),
    ],
)
def test_swift_literal(text: str, literal: str) -> None:
    assert swift_literal(text) == literal


def test_a_lone_surrogate_has_no_swift_literal() -> None:
    with pytest.raises(ValueError, match="lone surrogate"):
        swift_literal("a\udc80")
