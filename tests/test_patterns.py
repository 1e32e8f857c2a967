"""Tests for hermetic._patterns.GlobGroup: torch.package's observed glob behaviour."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hermetic import _patterns
from hermetic._patterns import GlobGroup

# (pattern, candidate, matches) -- the observed truths about torch.package's GlobGroup,
# then escaping and segment edge cases.
CASES = [
    ("torch.**", "torch", True),
    ("torch.**", "torch.nn", True),
    ("torch.**", "torch.nn.functional", True),
    ("torch.**", "torchvision", False),
    ("torch.*", "torch.nn", True),
    ("torch.*", "torch.", True),
    ("torch.*", "torch", False),
    ("torch.*", "torch.nn.functional", False),
    ("torch*.**", "torch", True),
    ("torch*.**", "torchvision.models", True),
    ("**", "", False),
    ("**", "a", True),
    ("**", "a.b.c", True),
    ("*", "", True),
    ("*", "a", True),
    ("*", "a.b", False),
    ("a.**.b", "a.b", True),
    ("a.**.b", "a.x.b", True),
    ("a.**.b", "a.x.y.b", True),
    ("a.**.b", "a.x.y", False),
    ("a.**.b", "a..b", False),
    ("foo*baz*", "foobarbaz", True),
    ("foo*baz*", "foobazqux", True),
    ("foo*baz*", "foo.baz", False),
    ("foo*baz*", "foobar.baz", False),
    ("a+b", "a+b", True),
    ("a+b", "aab", False),
    ("a[0]", "a[0]", True),
    ("a[0]", "a0", False),
    ("a$", "a$", True),
    ("(a|b)", "a", False),
    ("a\\b", "a\\b", True),
    ("a?", "ab", False),
    ("", "", True),
    ("", "a", False),
    ("a", "a", True),
    ("a", "ab", False),
    ("a", "a.b", False),
    ("*.b", ".b", True),
]

BAD_PATTERNS = ["a**", "**b", "a.**b", "***", "a.b**.c", "x.***"]


@pytest.mark.parametrize(("pattern", "candidate", "expected"), CASES)
def test_matches_follows_case_table(pattern, candidate, expected):
    """Each pattern matches exactly the candidates the table says."""
    assert GlobGroup(pattern).matches(candidate) is expected


@pytest.mark.parametrize("pattern", BAD_PATTERNS)
def test_double_star_inside_segment_is_refused(pattern):
    """``**`` mixed with other characters in a segment raises ValueError."""
    with pytest.raises(
        ValueError, match=r"^\*\* can only appear as an entire path segment$"
    ):
        GlobGroup(pattern)


def test_double_star_in_exclude_is_checked_too():
    """Exclude patterns are validated like include patterns."""
    with pytest.raises(ValueError, match="entire path segment"):
        GlobGroup("a", exclude="b**")


def test_exclude_removes_matches():
    """A candidate matching an exclude pattern is rejected."""
    group = GlobGroup("torch.**", exclude=["torch.testing", "torch.testing.**"])
    assert group.matches("torch.nn")
    assert not group.matches("torch.testing")
    assert not group.matches("torch.testing._internal.common")


def test_any_include_is_enough():
    """With several include patterns one match suffices."""
    group = GlobGroup(["numpy", "scipy.**"])
    assert group.matches("numpy")
    assert group.matches("scipy.linalg")
    assert not group.matches("numpy.linalg")


def test_empty_include_matches_nothing():
    """No include patterns means no candidate matches."""
    assert not GlobGroup([]).matches("")
    assert not GlobGroup(()).matches("a")


def test_include_accepts_any_iterable():
    """A generator of patterns works and is consumed once at construction."""
    group = GlobGroup(p for p in ["a", "b.*"])
    assert group.matches("a")
    assert group.matches("b.c")
    assert group.matches("a")


def test_separator_slash():
    """With ``/`` as separator, dots are ordinary characters."""
    group = GlobGroup("pkg/**/*.txt", separator="/")
    assert group.matches("pkg/data.txt")
    assert group.matches("pkg/a/b/data.txt")
    assert not group.matches("pkg.data.txt")
    assert not GlobGroup("a.*", separator="/").matches("ab.c")
    assert GlobGroup("a.*", separator="/").matches("a.c.d")


@pytest.mark.parametrize("separator", ["", "::"])
def test_separator_must_be_one_character(separator):
    """An empty or multi-character separator is refused."""
    with pytest.raises(ValueError, match="separator must be one character"):
        GlobGroup("a", separator=separator)


@pytest.mark.parametrize(
    ("group", "text"),
    [
        (GlobGroup("torch.**"), "GlobGroup(include=torch.**, exclude=())"),
        (
            GlobGroup(["a", "b"], exclude=["c"]),
            "GlobGroup(include=['a', 'b'], exclude=['c'])",
        ),
        (GlobGroup(("a",), exclude="x.*"), "GlobGroup(include=('a',), exclude=x.*)"),
    ],
)
def test_str_and_repr_show_arguments_as_given(group, text):
    """``str`` and ``repr`` both spell the arguments as they were passed."""
    assert str(group) == text
    assert repr(group) == text


def test_groups_are_hashable_by_identity():
    """Groups can key a dict (an exporter's pattern table), one entry per group."""
    first, second = GlobGroup("a"), GlobGroup("a")
    table = {first: 1, second: 2}
    assert len(table) == 2


def test_module_has_sorted_all():
    """``__all__`` is sorted and names only what the module defines."""
    assert list(_patterns.__all__) == sorted(_patterns.__all__)
    assert all(hasattr(_patterns, name) for name in _patterns.__all__)


# --- property: agreement with a naive reference matcher ---------------------------

_SEGMENT_CHARS = "ab*+[(\\$^?"


def _segment_matches(pattern: str, text: str) -> bool:
    """Naive ``*``-only wildcard match of one segment (no separators in either)."""
    if not pattern:
        return not text
    if pattern[0] == "*":
        return any(
            _segment_matches(pattern[1:], text[i:]) for i in range(len(text) + 1)
        )
    return (
        bool(text) and text[0] == pattern[0] and _segment_matches(pattern[1:], text[1:])
    )


def _segments_match(patterns: list[str], segments: list[str]) -> bool:
    """Naive segment-list match; ``**`` eats zero or more non-empty segments."""
    if not patterns:
        return not segments
    head, rest = patterns[0], patterns[1:]
    if head == "**":
        if _segments_match(rest, segments):
            return True
        return (
            bool(segments)
            and segments[0] != ""
            and _segments_match(patterns, segments[1:])
        )
    return (
        bool(segments)
        and _segment_matches(head, segments[0])
        and _segments_match(rest, segments[1:])
    )


def _valid(segments: list[str]) -> bool:
    return all(s == "**" or "**" not in s for s in segments)


def _reference(pattern: str, candidate: str, sep: str) -> bool:
    return _segments_match(pattern.split(sep), candidate.split(sep))


_segments = st.one_of(st.just("**"), st.text(_SEGMENT_CHARS, max_size=4))
_patterns_st = st.lists(_segments, min_size=1, max_size=4)
_candidates = st.lists(st.text("ab+[(\\$^?", max_size=3), min_size=1, max_size=5)


@given(_patterns_st, _candidates, st.sampled_from([".", "/"]))
def test_matches_agrees_with_naive_reference(segments, parts, sep):
    """GlobGroup and a naive recursive matcher agree on every valid pattern."""
    pattern, candidate = sep.join(segments), sep.join(parts)
    if not _valid(segments):
        with pytest.raises(ValueError, match="entire path segment"):
            GlobGroup(pattern, separator=sep)
        return
    group = GlobGroup(pattern, separator=sep)
    assert group.matches(candidate) is _reference(pattern, candidate, sep)


@given(
    st.lists(_patterns_st, min_size=0, max_size=3),
    st.lists(_patterns_st, min_size=0, max_size=2),
    _candidates,
)
def test_include_exclude_agree_with_reference(includes, excludes, parts):
    """matches() is "any include and no exclude" over the reference matcher."""
    include = [".".join(s) for s in includes if _valid(s)]
    exclude = [".".join(s) for s in excludes if _valid(s)]
    candidate = ".".join(parts)
    expected = any(_reference(p, candidate, ".") for p in include) and not any(
        _reference(p, candidate, ".") for p in exclude
    )
    assert GlobGroup(include, exclude=exclude).matches(candidate) is expected
