"""distill.models: loading a base encoder, a teacher and a tokenizer, and what loading tells the user."""

from __future__ import annotations

import pytest
import torch
import transformers
from conftest import LABELS, tiny_config
from safetensors.torch import load_file, save_file
from transformers import AutoModelForSequenceClassification, BertForSequenceClassification, BertModel

from distill.models import load_base_model, weights_fingerprint


@pytest.fixture
def propagated(caplog):  # type: ignore[no-untyped-def]
    """transformers' records reach caplog (its loggers do not propagate by default)."""
    transformers.utils.logging.enable_propagation()
    caplog.set_level("INFO")
    yield caplog
    transformers.utils.logging.disable_propagation()


def bare_encoder(path, tokenizer):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    BertModel(tiny_config()).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_a_new_classification_head_is_one_line_not_a_load_report(tmp_path, tokenizer, propagated):
    model = load_base_model(str(bare_encoder(tmp_path / "bare", tokenizer)), LABELS, "neither")
    messages = [r.getMessage() for r in propagated.records]
    assert not any("LOAD REPORT" in m for m in messages)
    ours = [m for m in messages if m.startswith("New classification head")]
    assert ours == ["New classification head (classifier): drawn from --seed and trained in this run."]
    assert model.config.id2label == dict(enumerate(LABELS))


def test_missing_encoder_weights_keep_transformers_report(tmp_path, tokenizer, propagated):
    path = bare_encoder(tmp_path / "damaged", tokenizer)
    weights = load_file(path / "model.safetensors")
    save_file({k: v for k, v in weights.items() if "layer.3." not in k}, path / "model.safetensors")
    load_base_model(str(path), LABELS)
    messages = [r.getMessage() for r in propagated.records]
    assert any("LOAD REPORT" in m and "encoder.layer.3" in m for m in messages)
    assert not any(m.startswith("New classification head") for m in messages)


def test_a_weights_fingerprint_names_the_weights_not_the_folder(tmp_path):
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config())
    model.save_pretrained(tmp_path / "teacher")
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "teacher")
    assert weights_fingerprint(loaded) == weights_fingerprint(model)  # saved and loaded: the same weights
    with torch.no_grad():
        loaded.bert.encoder.layer[5].output.dense.weight[0, 0] += 1e-3  # one value of one layer
    loaded.save_pretrained(tmp_path / "teacher")  # retrained into the same folder
    retrained = AutoModelForSequenceClassification.from_pretrained(tmp_path / "teacher")
    assert weights_fingerprint(retrained) == weights_fingerprint(loaded) != weights_fingerprint(model)
