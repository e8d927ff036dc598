"""distill.runner: what the training scripts share: the Trainer's inputs (length-grouped batches by the
precomputed length) and test predictions returned in the dataset's order."""

from __future__ import annotations

import pytest
import torch
from conftest import LABELS, no_dropout_teacher, toxic_rows
from transformers import Trainer

pytestmark = pytest.mark.slow


def test_training_batches_are_grouped_by_the_precomputed_length(csv_data, tokenizer, tmp_path):
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from distill.args import RunArguments
    from distill.data import load_splits, tokenize
    from distill.runner import trainer_inputs

    rows = toxic_rows(400)  # the sampler sorts within megabatches of up to n // (4 · batch) batches
    rows["tweet"] = [text + " lol" * (i % 11) for i, text in enumerate(rows["tweet"])]  # 12 to 32 tokens
    rows.to_csv(csv_data, index=False)
    data = tokenize(load_splits(str(csv_data)).data, tokenizer, max_length=32)

    def padded_share(strategy: str) -> float:
        """Share of the tokens in the training batches that are padding."""
        args = RunArguments(
            output_dir=str(tmp_path), train_sampling_strategy=strategy, per_device_train_batch_size=8, seed=0
        )
        model = no_dropout_teacher()
        trainer = Trainer(model=model, args=args, **trainer_inputs(data, tokenizer, LABELS))
        if strategy == "group_by_length":
            sampler = trainer._get_train_sampler()
            assert isinstance(sampler, LengthGroupedSampler) and sampler.lengths == data["train"]["length"]
        masks = [batch["attention_mask"] for batch in trainer.get_train_dataloader()]
        assert all("length" not in batch for batch in trainer.get_train_dataloader())
        return 1 - sum(int(m.sum()) for m in masks) / sum(m.numel() for m in masks)

    assert RunArguments(output_dir=str(tmp_path)).train_sampling_strategy == "group_by_length"
    assert padded_share("group_by_length") < padded_share("random") / 2


def test_test_predictions_come_back_in_the_datasets_order(csv_data, tokenizer, tmp_path):
    from distill.args import RunArguments
    from distill.data import load_splits, tokenize
    from distill.runner import predict_in_order, trainer_inputs

    rows = toxic_rows(400)
    rows["tweet"] = [text + " lol" * (i % 11) for i, text in enumerate(rows["tweet"])]
    rows.to_csv(csv_data, index=False)
    data = tokenize(load_splits(str(csv_data)).data, tokenizer, max_length=32)
    test = data["test"]
    model = no_dropout_teacher()
    args = RunArguments(output_dir=str(tmp_path), per_device_eval_batch_size=4, disable_tqdm=True, seed=0)
    trainer = Trainer(model=model, args=args, **trainer_inputs(data, tokenizer, LABELS))

    with torch.inference_mode():  # one example at a time: no padding, no order to get wrong
        expected = torch.cat([model(input_ids=torch.tensor([ids])).logits for ids in test["input_ids"]])
    output = predict_in_order(trainer, test)
    assert output.label_ids.tolist() == test["labels"]
    assert torch.allclose(torch.from_numpy(output.predictions), expected, atol=1e-5)
    assert (
        output.metrics["test_accuracy"]
        == trainer.predict(test, metric_key_prefix="test").metrics["test_accuracy"]
    )
    assert trainer.args.train_sampling_strategy == "group_by_length"  # left as it was
    # The stock predict under length grouping returns its own order: what this guards against.
    assert trainer.predict(test).label_ids.tolist() != test["labels"]
