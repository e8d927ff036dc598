"""distill.layers: naming teacher layers (odd, even, top, bottom or a list, 1-based) and finding any
encoder family's stack of layers."""

import re

import pytest
from torch import nn
from transformers import DistilBertConfig, DistilBertForSequenceClassification, MPNetConfig

from distill.errors import UserError
from distill.layers import find_layer_list, layers_name, parse_layers, parse_targets, to_zero_based


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("odd", [1, 3, 5, 7, 9, 11]),
        ("even", [2, 4, 6, 8, 10, 12]),
        ("top", [1, 2, 3, 4, 5, 6]),
        ("bottom", [7, 8, 9, 10, 11, 12]),
        ("EVEN", [2, 4, 6, 8, 10, 12]),
        ("2,5,11", [2, 5, 11]),
        (" 1 , 12 ", [1, 12]),
        ([3, 4], [3, 4]),
    ],
)
def test_parse_layers_names_one_based_teacher_layers(spec, expected):
    assert parse_layers(spec, 12) == expected


def test_named_strategies_follow_the_teacher_depth():
    assert parse_layers("odd", 6) == [1, 3, 5]
    assert parse_layers("bottom", 6) == [4, 5, 6]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("0,1,2,3,4,5", "numbered 1..12"),
        ("1,1,2,3,4,5", "repeats layer(s) 1"),
        ("2,13", "names layer(s) 13"),
        ("banana", "not a layer choice"),
        ("", "not a layer choice"),
        ("5,2", "out of order"),
        ("-1,2", "not a layer choice"),
    ],
)
def test_bad_layer_lists_are_refused_with_the_reason(spec, message):
    with pytest.raises(UserError, match=re.escape(message)):
        parse_layers(spec, 12)


def test_zero_based_conversion_and_names():
    assert to_zero_based([1, 3, 12]) == [0, 2, 11]
    assert layers_name("odd") == "odd"
    assert layers_name("2, 5,11") == "2-5-11"


def test_find_layer_list_across_encoder_families():
    from conftest import tiny_config
    from transformers import BertForSequenceClassification, MPNetForSequenceClassification

    assert find_layer_list(BertForSequenceClassification(tiny_config()))[0] == "bert.encoder.layer"
    assert (
        find_layer_list(MPNetForSequenceClassification(tiny_config(MPNetConfig)))[0] == "mpnet.encoder.layer"
    )
    distil = DistilBertForSequenceClassification(
        DistilBertConfig(n_layers=12, dim=32, hidden_dim=37, n_heads=2)
    )
    assert find_layer_list(distil)[0] == "distilbert.transformer.layer"


def test_find_layer_list_refuses_models_without_one_layer_stack():
    model = nn.Sequential(nn.Linear(2, 2))
    with pytest.raises(UserError, match="Cannot find the encoder layers"):
        find_layer_list(model, expected=12)


def test_layer_matching_targets_default_to_the_layers_copied():
    assert parse_targets(None, [2, 4, 6, 8, 10, 12], 12) == [2, 4, 6, 8, 10, 12]
    assert parse_targets(" 2, 4,6,8,10,12", [1, 2, 3, 4, 5, 6], 12) == [2, 4, 6, 8, 10, 12]  # PKD-skip


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("2,4,6", "names 3 teacher layer(s) for a student of 6 layers"),
        ("0,2,4,6,8,10", "names layer(s) 0"),
        ("2,4,6,8,10,13", "names layer(s) 13"),
        ("even", "is not a list of teacher layers"),
        ("2,4,,6,8,10", "is not a list of teacher layers"),
    ],
)
def test_bad_layer_matching_targets_are_one_line_errors(spec, message):
    with pytest.raises(UserError, match=re.escape(message)):
        parse_targets(spec, [1, 2, 3, 4, 5, 6], 12)
