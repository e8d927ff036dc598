import pytest
import torch
from conftest import TINY_RUN, run_script, tiny_config
from transformers import BertForSequenceClassification

from distill.data import load_splits, tokenize
from distill.teacher_cache import COLUMN, cache_key, compute_teacher_logits, with_teacher_logits


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
    full = compute_teacher_logits(teacher, train, tokenizer, batch_size=5)
    reversed_rows = compute_teacher_logits(
        teacher, train.select(range(len(train) - 1, -1, -1)), tokenizer, batch_size=5
    )
    assert torch.allclose(full.flip(0), reversed_rows, atol=1e-6)


@pytest.mark.slow
def test_students_trained_with_and_without_cache_end_equal(teacher_dir, csv_data, tmp_path):
    from safetensors.torch import load_file

    flags = [
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
    assert any((tmp_path / "cache").iterdir())
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
