"""nn.check_exercise: right answers pass, wrong ones fail with a message that says what is wrong
and never prints the expected value. One test per case of the classroom issue, then the rest."""

import math
import re

import numpy as np
import pytest

import nn_helpers as nn


def failure(got, expected, **kwargs) -> str:
    """The message check_exercise raises for ``got``; fails the test if it passes."""
    with pytest.raises(AssertionError) as info:
        nn.check_exercise("ex", got, expected, **kwargs)
    return str(info.value)


def passes(got, expected, capsys, **kwargs) -> bool:
    nn.check_exercise("ex", got, expected, **kwargs)
    return capsys.readouterr().out == "Correct: ex\n"


# ---- the cases listed in the issue ---------------------------------------------------------------

def test_a_string_never_passes_for_a_number():
    message = failure("2.302585", math.log(10))
    assert "str" in message and "2.30" not in message.replace("'2.302585'", "")


def test_an_int_does_not_pass_for_a_float():
    assert "int" in failure(3, 3.0000001)
    assert "int" in failure(np.int64(3), 3.0)


def test_a_float_does_not_pass_for_an_int():
    assert "integer" in failure(3.0, 3)


def test_a_bool_array_does_not_pass_for_a_float_array():
    message = failure(np.array([True, False]), np.array([1.0, 0.0]))
    assert "bool" in message and "float64" in message


def test_an_int_array_does_not_pass_for_a_float_array():
    assert "integers" in failure(np.array([1, 0]), np.array([1.0, 0.0]))


def test_the_dtype_of_an_expected_array_is_checked():
    message = failure(np.zeros(3, dtype=np.float64), np.zeros(3, dtype=np.float32))
    assert "float32" in message and "float64" in message


def test_the_dtype_of_an_expected_numpy_scalar_is_checked():
    assert "float32" in failure(np.float64(0.5), np.float32(0.5))
    assert "float32" in failure(0.5, np.float32(0.5))


def test_integer_arrays_pass_whatever_their_width(capsys):
    assert passes(np.array([1, 2], dtype=np.int32), np.array([1, 2], dtype=np.int64), capsys)


def test_lists_and_tuples_are_compared_item_by_item_with_tolerance(capsys):
    assert passes([0.1 + 0.2], [0.3], capsys)
    assert passes((1, 0.1 + 0.2, [np.float64(0.3)]), (1, 0.3, [0.3]), capsys)


def test_nan_equals_nan_where_the_expected_value_has_nan(capsys):
    assert passes(float("nan"), float("nan"), capsys)
    assert passes(np.array([1.0, np.nan]), np.array([1.0, np.nan]), capsys)
    assert "NaN" in failure(np.array([np.nan, 1.0]), np.array([1.0, 1.0]))
    assert "NaN" in failure(1.0, float("nan"))


def test_dicts_of_arrays_are_compared_key_by_key(capsys):
    expected = {"W1": np.ones((2, 3)), "b1": np.zeros(3)}
    assert passes({"W1": np.ones((2, 3)), "b1": np.zeros(3)}, expected, capsys)
    message = failure({"W1": np.ones((2, 3)), "b1": np.ones(3)}, expected)
    assert "'b1'" in message and "ambiguous" not in message
    assert "missing keys ['b1']" in failure({"W1": np.ones((2, 3))}, expected)
    assert "unexpected keys ['W2']" in failure({**expected, "W2": 1.0}, expected)


def test_nested_dicts_are_compared_recursively():
    message = failure({"a": {"b": [1, 2]}}, {"a": {"b": [1, 3]}})
    assert "'a'" in message and "'b'" in message and "[1]" in message


def test_a_list_for_a_tuple_names_the_type():
    message = failure([784, 128], (784, 128))
    assert "tuple" in message and "list" in message
    assert "list" in failure((784, 128), [784, 128])


# ---- messages that teach without telling ---------------------------------------------------------

EXPECTED_VALUES = [0.8, math.log(10), 0.0271, 123.456]


@pytest.mark.parametrize("expected", EXPECTED_VALUES)
@pytest.mark.parametrize("factor", [1.13, 0.7, 10.0, -1.0, 1.001])
def test_a_scalar_message_never_contains_the_expected_value(expected, factor):
    message = failure(expected * factor, expected)
    printed = {f"{expected:{spec}}" for spec in (".1f", ".2f", ".3f", ".4f", ".6g", "")}
    assert not any(text in message for text in printed), message


def test_array_messages_never_contain_expected_entries():
    expected = np.array([0.8123, 2.3026, -1.5])
    for got in (expected * 1.3, -expected, expected + np.array([0, 0.1, 0])):
        message = failure(got, expected)
        assert not re.search(r"0\.81|2\.30|1\.5\b", message), message


@pytest.mark.parametrize("got, words", [
    (1.12, "too large by about 10%"),
    (0.7, "too small by about 30%"),
    (10.0, "too large by a factor of about 10"),
    (0.01, "too small by a factor of about 100"),
    (-1.0, "sign is flipped"),
    (1.01, "slightly too large"),
    (float("inf"), "infinite"),
    (float("nan"), "NaN"),
])
def test_scalar_misses_are_described_in_words(got, words):
    assert words in failure(got, 1.0)


def test_integer_misses_only_say_the_direction():
    assert failure(5, 3).endswith("it is too large.")
    assert failure(2, 3).endswith("it is too small.")


def test_array_messages_name_the_entries_and_the_pattern():
    expected = np.arange(1.0, 7.0)
    assert "entries [1, 4]" in failure(expected + np.array([0, 1, 0, 0, 1, 0]), expected)
    assert "6 times too large" in failure(6 * expected, expected)
    assert "sign is flipped" in failure(-expected, expected)
    assert "(0, 1)" in failure(np.array([[1.0, 5.0]]), np.array([[1.0, 2.0]]))


def test_a_shape_mismatch_gives_the_expected_shape():
    message = failure(np.zeros((3, 1)), np.zeros(3))
    assert "expected shape (3,)" in message and "(3, 1)" in message
    assert "transposed" in failure(np.zeros((2, 3)), np.zeros((3, 2)))


def test_a_list_for_an_array_says_so():
    assert "np.array" in failure([1.0, 2.0], np.array([1.0, 2.0]))


def test_none_says_that_a_return_is_missing():
    assert "return" in failure(None, 1.0)


# ---- types that must be told apart ---------------------------------------------------------------

def test_a_bool_is_not_an_int():
    assert "bool" in failure(True, 1)
    assert "bool" in failure(1, True)


def test_numpy_numbers_pass_for_python_numbers(capsys):
    assert passes(np.int64(3), 3, capsys)
    assert passes(np.float64(0.5), 0.5, capsys)
    assert passes(np.float32(0.5), 0.5, capsys)
    assert passes(0.5, np.float64(0.5), capsys)
    assert passes(np.bool_(True), True, capsys)


def test_a_zero_dimensional_array_is_not_a_number():
    assert "float(...)" in failure(np.array(0.5), 0.5)


def test_strings_are_compared_as_text(capsys):
    assert passes("relu", "relu", capsys)
    assert "upper and lower case" in failure("ReLU", "relu")
    assert "str" in failure(3, "3")


# ---- the interface -------------------------------------------------------------------------------

def test_tolerances_and_hint_keep_their_old_signature(capsys):
    nn.check_exercise("close", 1.0001, 1.0, rtol=1e-3, atol=0, hint="unused")
    assert capsys.readouterr().out == "Correct: close\n"
    with pytest.raises(AssertionError, match=r"^named: .*\nHint: look again$"):
        nn.check_exercise("named", 2.0, 1.0, hint="look again")


def test_a_negative_tolerance_is_refused():
    with pytest.raises(ValueError, match="rtol"):
        nn.check_exercise("ex", 1.0, 1.0, rtol=-1)


def test_arrays_equal_within_tolerance_pass(capsys):
    expected = np.linspace(0, 1, 5, dtype=np.float32)
    assert passes(expected * np.float32(1 + 1e-7), expected, capsys)


def test_check_exercise_float32_scalar_within_tolerance(capsys):
    # Found by these tests: np.float32 is not a Python float, so a float32 scalar answer (the
    # .mean() of a float32 array) is compared with `!=` and fails on a one-ulp difference.
    expected = np.float32(0.3)
    got = np.nextafter(expected, np.float32(1))  # 1 ulp away, relative difference 1e-7
    nn.check_exercise("loss", got, expected)
    assert capsys.readouterr().out == "Correct: loss\n"
