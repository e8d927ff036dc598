"""TF-IDF + logistic regression (balanced class weights) on exactly the split the neural runs use.

    python scripts/baseline.py --dataset ../shared/data/davidson/labeled_data.csv --max_train_samples 2000

Pass the same data flags as the other runs: the baseline's results.json carries the same test-split
hash, and scripts/compare.py shows it as a reference row. Only results.json is written.
"""

import sys
from pathlib import Path

# Import the library beside this script, whatever is installed: `python scripts/x.py` puts scripts/
# first on the import path, where scripts/distill.py would shadow the distill package.
_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(_ROOT), *(p for p in sys.path if Path(p or ".").resolve() != _ROOT / "scripts")]

import dataclasses
from dataclasses import dataclass, field

from distill import cli
from distill.args import DataArguments
from distill.baseline import NAME, tfidf_baseline
from distill.data import load_splits
from distill.results import write_results
from distill.runner import split_facts


@dataclass
class BaselineArguments:
    output_dir: str = field(default="outputs/baseline-tfidf", metadata={"help": "Where results.json goes."})
    seed: int = field(
        default=42,
        metadata={
            "help": "random_state of the logistic regression. Its lbfgs solver draws no random numbers, so the "
            "baseline is the same at every seed: one run is its record."
        },
    )


def main() -> None:
    baseline_args, data_args = cli.parse_args((BaselineArguments, DataArguments))
    cli.setup_logging()
    splits = load_splits(**data_args.split_options())
    _, metrics = tfidf_baseline(splits, seed=baseline_args.seed)
    record = {
        "method": "baseline",
        "name": NAME,
        "layers": None,
        "teacher": None,
        "dataset": data_args.source,
        "seed": baseline_args.seed,
        **split_facts(splits),
        "arguments": {**dataclasses.asdict(baseline_args), **dataclasses.asdict(data_args)},
    }
    path = write_results(baseline_args.output_dir, {**record, **metrics})
    print(
        f"{NAME}: test accuracy {metrics['test_accuracy']:.4f}, macro-F1 {metrics['test_macro_f1']:.4f}, "
        + ", ".join(f"F1 {n} {metrics[f'test_f1_{n}']:.4f}" for n in splits.label_names)
        + f"; wrote {path}"
    )


if __name__ == "__main__":
    cli.run(main)
