"""The action grammar: canonical strings, errors that say what is wrong, round trips."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from games.actions import (
    Action,
    ActionError,
    action_between,
    apply_action,
    canonicalize_action,
    derive_action,
    format_action,
    letters_to_tangrams,
    parse_action,
    selection_state_text,
)

letter_sets = st.frozensets(st.sampled_from("ABCDEFGHIJ"))


@st.composite
def actions(draw):
    deselect = draw(letter_sets)
    select = draw(letter_sets) - deselect
    return Action(deselect=deselect, select=select)


@given(actions())
def test_format_then_parse_is_identity_on_canonical_strings(action):
    text = format_action(action)
    assert format_action(parse_action(text)) == text
    assert parse_action(text) == action


@given(letter_sets, letter_sets)
def test_derive_then_apply_round_trips(before, after):
    action = derive_action(before, after)
    assert apply_action(before, action) == after


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("select A C", Action(select=frozenset("AC"))),
        ("deselect B", Action(deselect=frozenset("B"))),
        ("deselect B select D F", Action(deselect=frozenset("B"), select=frozenset("DF"))),
        ("", Action()),
    ],
)
def test_parse_examples_of_the_protocol(text, expected):
    assert parse_action(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("select C A", "must be sorted"),
        ("select A A", "appears twice"),
        ("select K", "outside the context"),
        ("select A deselect B", "must come before"),
        ("pick A", "must start with"),
        ("select", "names no letter"),
        ("select a", "is not a letter"),
        (" select A", "whitespace"),
        ("select A select B", "twice"),
        ("deselect A select A", "both deselected and selected"),
    ],
)
def test_invalid_strings_say_what_is_wrong(text, message):
    with pytest.raises(ActionError, match=message):
        parse_action(text)


def test_lenient_parse_canonicalizes_order_and_case():
    assert canonicalize_action("Select c a  ") == "select A C"
    with pytest.raises(ActionError, match="appears twice"):
        canonicalize_action("select a A")


def test_apply_refuses_actions_that_do_not_fit_the_selection():
    with pytest.raises(ActionError, match="cannot deselect B"):
        apply_action({"A"}, parse_action("deselect B"))
    with pytest.raises(ActionError, match="cannot select A"):
        apply_action({"A"}, parse_action("select A"))


def test_letters_follow_the_listener_order():
    order = [f"t{i}" for i in range(10)]
    assert action_between(order, ["t1"], ["t0", "t9"]) == "deselect B select A J"
    assert letters_to_tangrams(order, {"J", "A"}) == ["t0", "t9"]
    assert selection_state_text(order, []) == "none is selected"
    assert selection_state_text(order, ["t2", "t0"]) == "A C currently selected"
    with pytest.raises(ActionError, match="not in the context"):
        action_between(order, [], ["elsewhere"])
