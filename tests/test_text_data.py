"""Tests of lstmkit.data.text: pad_sequences and TextVectorization against Keras's documented
behaviour and against simple independent formulations."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lstmkit.data.text import TextVectorization, pad_sequences

# ---------------------------------------------------------------------------------------------
# pad_sequences
# ---------------------------------------------------------------------------------------------


def test_pad_sequences_matches_keras_documented_examples():
    # The examples of keras.utils.pad_sequences's docstring.
    sequence = [[1], [2, 3], [4, 5, 6]]
    assert pad_sequences(sequence).tolist() == [[0, 0, 1], [0, 2, 3], [4, 5, 6]]
    assert pad_sequences(sequence, value=-1).tolist() == [[-1, -1, 1], [-1, 2, 3], [4, 5, 6]]
    assert pad_sequences(sequence, padding="post").tolist() == [[1, 0, 0], [2, 3, 0], [4, 5, 6]]
    assert pad_sequences(sequence, maxlen=2).tolist() == [[0, 1], [2, 3], [5, 6]]


def _reference_pad(seqs, maxlen, padding, truncating, value):
    """Independent formulation with Python lists only."""
    length = max((len(s) for s in seqs), default=0) if maxlen is None else maxlen
    rows = []
    for s in seqs:
        s = list(s)
        if len(s) > length:
            s = s[len(s) - length :] if truncating == "pre" else s[:length]
        fill = [value] * (length - len(s))
        rows.append(fill + s if padding == "pre" else s + fill)
    return rows


@settings(max_examples=200, deadline=None)
@given(
    seqs=st.lists(st.lists(st.integers(-1000, 1000), max_size=8), max_size=6),
    maxlen=st.one_of(st.none(), st.integers(0, 10)),
    padding=st.sampled_from(["pre", "post"]),
    truncating=st.sampled_from(["pre", "post"]),
    value=st.integers(-5, 5),
)
def test_pad_sequences_agrees_with_reference(seqs, maxlen, padding, truncating, value):
    out = pad_sequences(seqs, maxlen=maxlen, padding=padding, truncating=truncating, value=value)
    expected = _reference_pad(seqs, maxlen, padding, truncating, value)
    assert out.dtype == np.int32
    assert out.shape == (len(seqs), len(expected[0]) if expected else (maxlen or 0))
    assert out.tolist() == expected


def test_pad_sequences_feature_vectors_and_dtype():
    seqs = [np.ones((3, 2)), np.full((1, 2), 7.5)]
    out = pad_sequences(seqs, maxlen=2, dtype="float32", padding="post", value=-1.0)
    assert out.shape == (2, 2, 2) and out.dtype == np.float32
    assert out[0].tolist() == [[1, 1], [1, 1]]
    assert out[1].tolist() == [[7.5, 7.5], [-1, -1]]
    # numpy casting to the requested integer dtype truncates towards zero, as in Keras
    assert pad_sequences([[1.9, -1.9]]).tolist() == [[1, -1]]


def test_pad_sequences_empty_cases():
    assert pad_sequences([[], [1, 2]]).tolist() == [[0, 0], [1, 2]]
    assert pad_sequences([[], []]).shape == (2, 0)
    assert pad_sequences([]).shape == (0, 0)
    assert pad_sequences([[1, 2]], maxlen=0).shape == (1, 0)


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"padding": "middle"}, ValueError, "padding"),
        ({"truncating": "both"}, ValueError, "truncating"),
        ({"maxlen": -1}, ValueError, "maxlen"),
        ({"maxlen": 2.5}, TypeError, "maxlen"),
        ({"value": "x"}, ValueError, "value"),
    ],
)
def test_pad_sequences_rejects_bad_arguments(kwargs, error, words):
    with pytest.raises(error, match=words):
        pad_sequences([[], []], **kwargs)


def test_pad_sequences_rejects_bad_sequences():
    with pytest.raises(TypeError, match="sequences"):
        pad_sequences("abc")
    with pytest.raises(TypeError, match=r"sequences\[1\]"):
        pad_sequences([[1], 5])
    with pytest.raises(ValueError, match=r"sequences\[1\]"):
        pad_sequences([np.ones((2, 3)), np.ones((2, 4))])
    # string padding is fine with an object dtype
    assert pad_sequences([["a"]], maxlen=2, dtype=object, value="").tolist() == [["", "a"]]


# ---------------------------------------------------------------------------------------------
# TextVectorization
# ---------------------------------------------------------------------------------------------


def test_text_vectorization_matches_keras_docstring_example():
    # keras.layers.TextVectorization's docstring: the vocabulary order (ties broken by
    # descending token) decides these exact indices.
    tv = TextVectorization(max_tokens=5000, output_sequence_length=4)
    tv.adapt(["foo bar", "bar baz", "baz bada boom"])
    out = tv(np.array([["foo qux bar"], ["qux baz"]]))
    assert out.dtype == np.int64
    assert out.tolist() == [[4, 1, 3, 0], [1, 2, 0, 0]]


def test_text_vectorization_fixed_vocabulary_as_keras():
    tv = TextVectorization(vocabulary=["earth", "wind", "and", "fire"])
    assert tv.get_vocabulary() == ["", "[UNK]", "earth", "wind", "and", "fire"]
    assert tv.get_vocabulary(include_special_tokens=False) == ["earth", "wind", "and", "fire"]
    assert tv.vocabulary_size() == 6
    # the same vocabulary given with its special tokens is accepted as is
    again = TextVectorization(vocabulary=tv.get_vocabulary())
    assert again.get_vocabulary() == tv.get_vocabulary()


def test_vocabulary_is_ordered_by_frequency_then_descending_token():
    tv = TextVectorization()
    tv.adapt(["b a c a", "c b d", "a"])  # a:3, b:2, c:2, d:1
    assert tv.get_vocabulary() == ["", "[UNK]", "a", "c", "b", "d"]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(alphabet="abcde ", max_size=12), max_size=8), st.randoms())
def test_vocabulary_does_not_depend_on_text_order(texts, rnd):
    shuffled = list(texts)
    rnd.shuffle(shuffled)
    a, b = TextVectorization(), TextVectorization()
    a.adapt(texts)
    b.adapt(shuffled)
    assert a.get_vocabulary() == b.get_vocabulary()


def test_max_tokens_counts_the_special_tokens():
    tv = TextVectorization(max_tokens=4)
    tv.adapt(["x x x y y z"])
    assert tv.get_vocabulary() == ["", "[UNK]", "x", "y"]
    assert tv(["z y"]).tolist() == [[1, 3]]


def test_standardization_and_punctuation():
    tokens = TextVectorization().tokenize
    # ASCII punctuation goes, apostrophes included (as in Keras): negations stay one token
    assert tokens("Don't STOP -- it isn't over!") == ["dont", "stop", "it", "isnt", "over"]
    # lower-casing is Unicode-aware; typographic punctuation is not in Keras's strip set
    assert tokens("ÄRGER „über“ don’t") == ["ärger", "„über“", "don’t"]
    assert TextVectorization(standardize="lower").tokenize("A,b") == ["a,b"]
    assert TextVectorization(standardize="strip_punctuation").tokenize("A,b") == ["Ab"]
    assert TextVectorization(standardize=None).tokenize(" A,b \t c\n") == ["A,b", "c"]


def test_character_split_keeps_spaces_and_code_points():
    tv = TextVectorization(split="character", standardize=None)
    assert tv.tokenize("é a") == ["é", " ", "a"]
    tv.adapt(["ab a"])
    # a:2, then b and " " tie at 1 -> "b" before " " (descending order)
    assert tv.get_vocabulary() == ["", "[UNK]", "a", "b", " "]
    assert tv.decode(tv(["b a!"])[0]) == "b a[UNK]"


def test_padding_truncation_and_empty_strings():
    tv = TextVectorization()
    tv.adapt(["one two three four"])
    vocab = tv.get_vocabulary()
    ids = {token: vocab.index(token) for token in ("one", "two", "three", "four")}
    out = tv(["one two three", "", "four"])
    assert out.tolist() == [[ids["one"], ids["two"], ids["three"]], [0, 0, 0], [ids["four"], 0, 0]]
    assert tv(["", ""]).shape == (2, 0)
    fixed = TextVectorization(output_sequence_length=2, vocabulary=vocab)
    assert fixed(["one two three", ""]).tolist() == [[ids["one"], ids["two"]], [0, 0]]


def test_bad_input_gives_clear_errors():
    tv = TextVectorization()
    with pytest.raises(RuntimeError, match="adapt"):
        tv(["text"])
    with pytest.raises(TypeError, match="list of strings"):
        tv.adapt("a single string")
    tv.adapt(["a b"])
    with pytest.raises(TypeError, match="list of strings"):
        tv("a b")
    with pytest.raises(TypeError, match="element 1"):
        tv(["a", 3])
    with pytest.raises(ValueError, match="standardize"):
        TextVectorization(standardize="upper")
    with pytest.raises(ValueError, match="split"):
        TextVectorization(split="words")
    with pytest.raises(ValueError, match="max_tokens"):
        TextVectorization(max_tokens=1)
    with pytest.raises(ValueError, match="pad_to_max_tokens"):
        TextVectorization(pad_to_max_tokens=True)
    with pytest.raises(ValueError, match="repeated"):
        TextVectorization(vocabulary=["a", "b", "a"])
    with pytest.raises(ValueError, match="max_tokens"):
        TextVectorization(max_tokens=3, vocabulary=["a", "b"])
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        TextVectorization(vocabulary=["a"]).decode([1, 3])
    with pytest.raises(ValueError, match="unknown keys"):
        TextVectorization.from_config({**tv.get_config(), "ngrams": 2})


_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), min_codepoint=1), max_size=30)


@settings(max_examples=60, deadline=None)
@given(
    texts=st.lists(_TEXT, max_size=8),
    queries=st.lists(_TEXT, min_size=1, max_size=5),
    split=st.sampled_from(["whitespace", "character", None]),
    standardize=st.sampled_from(["lower_and_strip_punctuation", "lower", None]),
    max_tokens=st.one_of(st.none(), st.integers(2, 20)),
    length=st.one_of(st.none(), st.integers(1, 6)),
)
def test_config_json_round_trip_reproduces_outputs(
    texts, queries, split, standardize, max_tokens, length
):
    tv = TextVectorization(
        max_tokens=max_tokens, standardize=standardize, split=split, output_sequence_length=length
    )
    tv.adapt(texts)
    config = json.loads(json.dumps(tv.get_config()))
    again = TextVectorization.from_config(config)
    assert again.get_vocabulary() == tv.get_vocabulary()
    np.testing.assert_array_equal(again(queries), tv(queries))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["wir", "ärger", "ab", "Über", "c"]), max_size=6)))
def test_decode_inverts_the_mapping_for_known_tokens(sentences):
    texts = [" ".join(words) for words in sentences]
    tv = TextVectorization(standardize=None)
    tv.adapt(texts)
    for text, row in zip(texts, tv(texts)):
        assert tv.decode(row) == text
