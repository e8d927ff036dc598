"""distill.teacher_cache: the teacher's logits (and layer states) computed once, aligned with their
examples, keyed by what changes them, and equal to the live teacher's in training."""

import os
from pathlib import Path

import pytest
import torch
from conftest import TINY_RUN, run_script, tiny_config
from transformers import BertForSequenceClassification

from distill.data import load_splits, tokenize
from distill.teacher_cache import COLUMN, STATES, cache_key, compute_teacher_outputs, with_teacher_logits


@pytest.fixture
def teacher():
    torch.manual_seed(0)
    return BertForSequenceClassification(tiny_config()).eval()


@pytest.fixture
def train(csv_data, tokenizer):
    return tokenize(load_splits(str(csv_data)).data, tokenizer, max_length=16)["train"]


def alone(teacher, row) -> torch.Tensor:
    """The teacher's logits for one example on its own: no padding, no batch neighbours."""
    with torch.no_grad():
        return teacher(
            **{k: torch.tensor([row[k]]) for k in ("input_ids", "token_type_ids", "attention_mask")}
        ).logits[0]


def test_cached_logits_stay_aligned_with_their_examples(teacher, train, tokenizer, tmp_path):
    """Computed in length-sorted batches, each row's logits come back at its own index."""
    shuffled = train.shuffle(seed=3)
    assert len(set(shuffled["length"])) > 1 and shuffled["length"] != sorted(shuffled["length"])
    cache = tmp_path / "cache"
    data = with_teacher_logits(shuffled, teacher, tokenizer, 16, cache, batch_size=8)
    for i in range(len(data)):
        torch.testing.assert_close(torch.tensor(data[COLUMN][i]), alone(teacher, data[i]), atol=1e-5, rtol=0)
    # A second call reads the file instead of running the teacher.
    files = list(cache.iterdir())
    assert len(files) == 1
    again = with_teacher_logits(shuffled, teacher, tokenizer, 16, cache, batch_size=8)
    assert again[COLUMN] == data[COLUMN] and list(cache.iterdir()) == files


def test_cache_key_changes_with_teacher_split_and_max_length(teacher, train, csv_data, tokenizer):
    key = cache_key(teacher, train, 16)
    assert cache_key(teacher, train, 16) == key
    other_teacher = BertForSequenceClassification(tiny_config())
    assert cache_key(other_teacher, train, 16) != key
    assert cache_key(teacher, train, 32) != key
    other_split = tokenize(load_splits(str(csv_data), split_seed=1).data, tokenizer, max_length=16)["train"]
    assert cache_key(teacher, other_split, 16) != key
    shorter = tokenize(load_splits(str(csv_data)).data, tokenizer, max_length=8)["train"]
    assert cache_key(teacher, shorter, 16) != key


def test_order_follows_the_dataset(teacher, train, tokenizer):
    full, states = compute_teacher_outputs(teacher, train, tokenizer, batch_size=5, layers=[2, 12])
    reversed_rows, reversed_states = compute_teacher_outputs(
        teacher, train.select(range(len(train) - 1, -1, -1)), tokenizer, batch_size=5, layers=[2, 12]
    )
    assert torch.allclose(full.flip(0), reversed_rows, atol=1e-6)
    assert states is not None and reversed_states is not None
    assert torch.allclose(states.flip(0), reversed_states, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("matching", [[], ["--pkd_weight", "5"]], ids=["logits", "logits and states"])
def test_students_trained_with_and_without_cache_end_equal(matching, teacher_dir, csv_data, tmp_path):
    from safetensors.torch import load_file

    flags = [
        *matching,
        "--teacher",
        teacher_dir,
        "--dataset",
        csv_data,
        "--layers",
        "even",
        *TINY_RUN,
        "--max_steps",
        "4",
        "--learning_rate",
        "1e-3",
    ]
    run_script(
        "distill", *flags, "--output_dir", tmp_path / "cached", "--teacher_cache_dir", tmp_path / "cache"
    )
    run_script("distill", *flags, "--output_dir", tmp_path / "live", "--no_teacher_cache")
    assert len(list((tmp_path / "cache").iterdir())) == (2 if matching else 1)
    cached = load_file(tmp_path / "cached" / "model.safetensors")
    live = load_file(tmp_path / "live" / "model.safetensors")
    assert cached.keys() == live.keys()
    for key in cached:
        assert torch.allclose(cached[key], live[key], atol=1e-5), key
    # The runs did train (so equal weights are not two untouched copies of the teacher's layers).
    teacher = load_file(teacher_dir / "model.safetensors")
    assert not torch.equal(cached["classifier.weight"], teacher["classifier.weight"])


def test_logits_are_cached_per_precision(teacher, train, tokenizer, tmp_path):
    """bf16 logits are another cache entry, computed under bf16 autocast as the live teacher runs."""
    assert cache_key(teacher, train, 16, "bf16") != cache_key(teacher, train, 16)
    cache = tmp_path / "cache"
    fp32 = with_teacher_logits(train, teacher, tokenizer, 16, cache, batch_size=8)
    bf16 = with_teacher_logits(train, teacher, tokenizer, 16, cache, batch_size=8, precision="bf16")
    assert len(list(cache.iterdir())) == 2
    full, reduced = torch.tensor(fp32[COLUMN]), torch.tensor(bf16[COLUMN])
    assert not torch.equal(full, reduced)
    torch.testing.assert_close(reduced, full, atol=0.05, rtol=0)


def test_two_students_writing_one_cache_at_once_both_finish(teacher, train, tokenizer, tmp_path, monkeypatch):
    """Two processes of one teacher (two students started together) that compute the same cache: the
    second finishes its write while the first is between writing and renaming its file. Each writes
    through a temporary file of its own, so neither finds its file renamed away by the other."""
    cache = tmp_path / "cache"
    rename = os.replace
    interleaved = []

    def replace_after_the_other_writer(src, dst):  # type: ignore[no-untyped-def]
        if Path(dst).name.startswith("teacher-logits-") and not interleaved:
            interleaved.append(dst)
            with_teacher_logits(train, teacher, tokenizer, 16, cache, batch_size=8)  # the other process
        rename(src, dst)

    monkeypatch.setattr(os, "replace", replace_after_the_other_writer)
    data = with_teacher_logits(train, teacher, tokenizer, 16, cache, batch_size=8)
    assert interleaved  # the other write really happened in between
    assert [p.name for p in cache.iterdir()] == [Path(interleaved[0]).name]  # no temporary file left
    monkeypatch.setattr(os, "replace", rename)
    assert with_teacher_logits(train, teacher, tokenizer, 16, cache, batch_size=8)[COLUMN] == data[COLUMN]


def test_matched_layers_cls_states_are_cached_under_their_own_key(teacher, train, tokenizer, tmp_path):
    """Layer i's [CLS] state is hidden_states[i][:, 0], row by row; the layers are part of the key, and the
    logits stay where a run without layer matching finds them."""
    assert cache_key(teacher, train, 16, layers=[2, 4]) not in (
        cache_key(teacher, train, 16),
        cache_key(teacher, train, 16, layers=[1, 4]),
    )
    cache = tmp_path / "cache"
    data = with_teacher_logits(train, teacher, tokenizer, 16, cache, batch_size=8, layers=[2, 12])
    row = data[3]
    with torch.no_grad():
        hidden = teacher(
            **{k: torch.tensor([row[k]]) for k in ("input_ids", "token_type_ids", "attention_mask")},
            output_hidden_states=True,
        ).hidden_states
    torch.testing.assert_close(
        torch.tensor(row[STATES]), torch.stack([hidden[2][0, 0], hidden[12][0, 0]]), atol=1e-5, rtol=0
    )
    assert sorted(p.name.split("-")[1] for p in cache.iterdir()) == ["cls", "logits"]
    logits_only = with_teacher_logits(train, teacher, tokenizer, 16, cache, batch_size=8)
    assert STATES not in logits_only.column_names and logits_only[COLUMN] == data[COLUMN]
    assert len(list(cache.iterdir())) == 2  # read, not computed again
