"""Every answer is parsed into its schema; the paper's self-checks are enforced in code."""

from __future__ import annotations

import json

import pytest

from interrvos.annotate.schemas import AnswerProblem, extract_json, parse_answer, sentence_subjects

IDS = ["1", "2", "3"]


def uni(pair=("[1]", "[2]"), descriptions=None, actors=("[1]",), targets=("[2]",)):
    return json.dumps({"interaction": "YES", "interactions": [{
        "object_pair": list(pair), "type": "unidirectional", "actors": list(actors), "targets": list(targets),
        "descriptions": descriptions or ["Object [1] is pushing object [2].", "Object [2] is being pushed by object [1]."]}]})


def reason(kind, text, **kw):
    with pytest.raises(AnswerProblem) as err:
        parse_answer(kind, text, IDS, **kw)
    return err.value.reason


def test_describe_accepts_json_and_two_plain_sentences():
    a = parse_answer("describe", '{"appearance": "A red ball.", "motion": "It rolls left."}')
    assert (a.appearance, a.motion) == ("A red ball.", "It rolls left.")
    b = parse_answer("describe", "A red ball with stripes. It rolls to the left and stops.")
    assert b.appearance == "A red ball with stripes." and b.motion.startswith("It rolls")


def test_describe_rejects_refusals_and_single_sentences_like_the_reference():
    assert reason("describe", "I'm sorry, I cannot see the object.") == "refusal"
    assert reason("describe", "A red ball rolling left.") == "too_few_sentences"
    assert reason("describe", "   ") == "empty"
    assert reason("describe", '{"appearance": "A red', truncated=True) == "truncated"


def test_json_is_found_inside_fences_and_chatter():
    assert extract_json('Sure!\n```json\n{"a": 1}\n```') == {"a": 1}
    assert extract_json('Here: {"a": {"b": "}"}} thanks') == {"a": {"b": "}"}}
    with pytest.raises(AnswerProblem):
        extract_json('{"a": 1,,}')


def test_grammatical_subjects_of_interaction_sentences():
    assert sentence_subjects("Object [1] and object [2] are shaking hands.") == ["1", "2"]
    assert sentence_subjects("Object [2] is being pushed by object [1].") == ["2"]
    assert sentence_subjects("[0], [1] and [7] walk together.") == ["0", "1", "7"]


def test_interactions_valid_answer_parses_with_roles():
    a = parse_answer("interactions", uni(), IDS)
    (i,) = a.interactions
    assert (i.object_pair, i.actors, i.targets) == (["1", "2"], ["1"], ["2"])
    assert parse_answer("interactions", '{"interaction": "NO", "interactions": []}', IDS).interactions == []


@pytest.mark.parametrize("text, why", [
    (uni(pair=("[1]", "[9]"), targets=("[9]",)), "not valid"),
    (uni(descriptions=["Object [1] is pushing object [2].", "Object [1] pushes object [2] hard."]), "subject"),
    (uni(descriptions=["Object [1] is pushing object [3].", "Object [2] is being pushed by object [1]."]),
     "not in object_pair"),
    (uni(actors=("[1]",), targets=("[1]",)), "split object_pair"),
    ('{"interaction": "NO", "interactions": [{"object_pair": ["[1]", "[2]"], "type": "bidirectional", '
     '"descriptions": ["Object [1] and object [2] meet."]}]}', "interaction is NO"),
])
def test_interactions_self_check_violations_are_named(text, why):
    with pytest.raises(AnswerProblem) as err:
        parse_answer("interactions", text, IDS)
    assert err.value.reason == "self_check" and why in err.value.message


def test_merge_and_interaction_expressions_are_checked():
    ok = parse_answer("merge", '{"merged": "yes", "merged_objects": ["[1]", 2], "merged_caption": "dogs running"}', IDS)
    assert ok.merged_objects == ["1", "2"]
    assert reason("merge", '{"merged": "YES", "merged_objects": ["1"], "merged_caption": "x"}') == "self_check"
    assert reason("interaction_expression", '{"class_level": "[1] pushing a cup", "appearance_level": "a red cup"}') == "self_check"
    assert reason("expressions", '{"all": "they run fast", "motion": "object running", "appearance": "red dog"}') == "self_check"
    assert reason("expressions", '{"all": "a red ball"}') == "schema"
