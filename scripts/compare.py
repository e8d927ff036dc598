"""Compare saved runs: the A7 and A6 tables, a full table, CSV/JSON and plots.

    python scripts/compare.py --runs outputs --output_dir outputs/report

Every folder under --runs (one or more folders) with a results.json is a run. Runs that trained
alike (the same method and every setting that changes training: class weights, precision, learning
rate, alpha, temperature, loss weights, teacher, data, length of training, ...; not the seed) form
one row, summarised over their seeds (mean ± std, n). A row's name adds to its method the settings
that tell it from the method's other rows ("Even Layer · bf16", "Even Layer · α 0.9", "LoRA (even) ·
lr 0.002"). Runs tested on a different test split than the teacher's are refused.
"""

import sys
from pathlib import Path

# Import the library beside this script, whatever is installed: `python scripts/x.py` puts scripts/
# first on the import path, where scripts/distill.py would shadow the distill package.
_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(_ROOT), *(p for p in sys.path if Path(p or ".").resolve() != _ROOT / "scripts")]

from dataclasses import dataclass, field

from distill import cli
from distill.report import build_report, write_report


@dataclass
class CompareArguments:
    runs: list[str] = field(
        default_factory=lambda: ["outputs"],
        metadata={"help": "Folder(s) searched for runs (their results.json)."},
    )
    output_dir: str = field(default="outputs/report", metadata={"help": "Where the report goes."})


def main() -> None:
    (args,) = cli.parse_args(CompareArguments)
    cli.setup_logging()
    report = build_report(args.runs)
    for path in write_report(report, args.output_dir):
        print(f"wrote {path}")
    print()
    print(report.markdown)


if __name__ == "__main__":
    cli.run(main)
