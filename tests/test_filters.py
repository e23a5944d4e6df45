import random

import pytest
from rouge_score import rouge_scorer

from hf_synth.filters import (
    RougeLIndex,
    greedy_novelty,
    instruction_reasons,
    keyword_reasons,
    length_reasons,
    output_reasons,
    refusal_reasons,
    rouge_l_f,
    rouge_tokens,
    start_reasons,
)
from hf_synth.metrics import load_rouge_l

from .conftest import many_instructions

SCORER = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def _reference(a: str, b: str) -> float:
    return SCORER.score(a, b)["rougeL"].fmeasure


@pytest.fixture(scope="module")
def instructions():
    return many_instructions(200)


def test_rouge_l_equals_rouge_score_on_real_pairs(instructions):
    rng = random.Random(0)
    pairs = [tuple(rng.sample(instructions, 2)) for _ in range(300)] + [(instructions[0], instructions[0])]
    for a, b in pairs:
        assert rouge_l_f(rouge_tokens(a), rouge_tokens(b)) == _reference(a, b)


def test_index_best_match_is_exact(instructions):
    pool, queries = instructions[:120], instructions[120:]
    index = RougeLIndex(pool)
    for query in queries:
        expected = max(_reference(p, query) for p in pool)
        match = index.best_match(query)
        assert match.score == pytest.approx(expected, abs=1e-12)
        assert _reference(pool[match.index], query) == pytest.approx(expected, abs=1e-12)


def _reference_greedy(candidates, pool, threshold):
    kept_pool, keep = list(pool), []
    for text in candidates:
        ok = all(_reference(p, text) < threshold for p in kept_pool)
        keep.append(ok)
        if ok:
            kept_pool.append(text)
    return keep


def test_greedy_novelty_matches_pairwise_reference(instructions):
    rng = random.Random(1)
    pool = instructions[:60]
    # candidates: real instructions plus light edits of pool items (near-duplicates that must be dropped)
    candidates = instructions[60:140] + [p.replace("the", "a", 1) for p in rng.sample(pool, 15)]
    candidates += candidates[:5]  # exact repeats of earlier candidates
    rng.shuffle(candidates)
    decisions = greedy_novelty(candidates, pool, threshold=0.7)
    assert [d.keep for d in decisions] == _reference_greedy(candidates, pool, 0.7)
    assert sum(not d.keep for d in decisions) >= 20


def test_packaged_evaluate_module_loads_offline_and_scores():
    rouge = load_rouge_l()
    result = rouge.compute(
        predictions=["write a poem about cats", "hello"],
        references=[["write a poem about dogs", "list rivers"], ["nothing alike"]],
    )
    assert result["rougeL"][0] == pytest.approx(
        _reference("write a poem about dogs", "write a poem about cats")
    )
    assert result["nearest"] == [0, -1] and result["rougeL"][1] == 0.0
    novelty = rouge.compute(
        predictions=["write a poem about cats", "write a poem about cats please", "x y z"],
        references=[[], [], []],
        pool=["write a haiku"],
        threshold=0.7,
    )
    assert novelty["keep"] == [True, False, True]


@pytest.mark.parametrize(
    "text, reasons",
    [
        ("Write a short poem about autumn.", []),
        ("123 Write a poem.", ["bad_start"]),
        ('"Write a poem."', ["bad_start"]),
        ("Ecris un poème sur l'automne.", []),
        ("Напиши стихотворение об осени.", []),
        ("Hi there", ["instruction_too_short"]),
        ("Draw a picture of a cat sitting on a mat.", ["blocked_keyword:draw"]),
        ("Describe the map of the city in detail.", ["blocked_keyword:map"]),
        ("Describe the mapping between sets in detail.", []),
        ("", ["empty_instruction"]),
    ],
)
def test_instruction_rules(text, reasons):
    assert (
        instruction_reasons(text, min_words=3, max_words=150, blocked_keywords=["draw", "map", "image"])
        == reasons
    )


def test_length_and_keyword_helpers():
    assert length_reasons("one two three four", 1, 3) == ["instruction_too_long"]
    assert length_reasons("one two", 1, 3, field="output") == []
    assert keyword_reasons("Please GO TO the website", ["go to"]) == ["blocked_keyword:go to"]
    assert start_reasons("   Ödön is a name") == []


@pytest.mark.parametrize(
    "instruction, input_text, output, reasons",
    [
        ("Sort the words.", "b, a", "a, b", []),
        ("Sort the words.", "b, a", "   ", ["empty_output"]),
        ("Sort the words.", "b, a", "...", ["output_no_words"]),
        ("Sort the words.", "b, a", "Sort the words!", ["output_copies_instruction"]),
        ("Sort the words.", "b, a", "B, A.", ["output_copies_input"]),
    ],
)
def test_output_rules(instruction, input_text, output, reasons):
    assert output_reasons(instruction, input_text, output) == reasons


@pytest.mark.parametrize(
    "text, flagged",
    [
        ("As an AI language model, I cannot have opinions.", True),
        ("I'm sorry, but I can't help with that.", True),
        ("I cannot provide medical advice.", True),
        ("The capital of France is Paris.", False),
        ("Sorry seems to be the hardest word, sang Elton John.", False),
    ],
)
def test_refusals(text, flagged):
    assert bool(refusal_reasons(text)) is flagged


@pytest.mark.parametrize(
    "text, reasons",
    [
        ("Fine text, with (balanced) [brackets] and {braces}.", []),
        ("Options: a) red b) green c) blue", []),  # extra closers are list markers, not breakage
        ("```python\nprint(1)\n```", []),
        ("Tabs\tand\nnewlines\r\nare text", []),
        ("日本語のテキスト（全角）も大丈夫", []),
        ("Make a merry-\ufffd (holiday) card", ["output_replacement_character"]),
        ("bell\x07 ring", ["output_control_characters"]),
        ("escape \x1b[31m red", ["output_control_characters"]),
        ("The list (first, second", ["output_unbalanced"]),
        ("```python\nprint(1)\n", ["output_unbalanced"]),
        ("", []),
    ],
)
def test_hygiene_reasons(text, reasons):
    from hf_synth.filters.heuristics import hygiene_reasons, truncated_reasons

    assert hygiene_reasons(text) == reasons
    assert truncated_reasons(256, 256, field="response") == ["response_truncated"]
    assert truncated_reasons(255, 256) == [] and truncated_reasons(5, 0) == []
