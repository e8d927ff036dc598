"""Publish a finished run to the Hugging Face Hub with a model card written from its results.json.

    python scripts/push_to_hub.py outputs/student-odd --repo_id your-name/toxic-odd-student
    python scripts/push_to_hub.py outputs/student-odd --repo_id your-name/toxic-odd-student --dry_run

The card (RUN_DIR/README.md) states what the model was distilled from, on what data, its test
accuracy, macro-F1 and per-class scores, its training hyperparameters, how to use it, and its
limitations. --dry_run writes the card and lists what would be uploaded, without the network.
"""

import sys
from pathlib import Path

# Import the library beside this script, whatever is installed: `python scripts/x.py` puts scripts/
# first on the import path, where scripts/distill.py would shadow the distill package.
_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(_ROOT), *(p for p in sys.path if Path(p or ".").resolve() != _ROOT / "scripts")]

from dataclasses import dataclass, field

from distill import cli
from distill.hub import publish


@dataclass
class PushArguments:
    run_dir: str = field(metadata={"help": "A finished run folder (with results.json)."})
    repo_id: str = field(metadata={"help": "Hub repository, NAMESPACE/NAME."})
    private: bool = field(default=False, metadata={"help": "Create the repository as private."})
    token: str | None = field(
        default=None, metadata={"help": "Hub token. Default: HF_TOKEN or `hf auth login`."}
    )
    license: str = field(default="apache-2.0", metadata={"help": "License in the card's metadata."})
    dry_run: bool = field(
        default=False, metadata={"help": "Write the card and list the files; upload nothing."}
    )


def main() -> None:
    # RUN_DIR is positional, as in `push_to_hub.py RUN_DIR --repo_id ...`.
    argv = cli.with_positional(sys.argv[1:], "--run_dir")
    (args,) = cli.parse_args(PushArguments, argv)
    cli.setup_logging()
    files = publish(
        args.run_dir,
        args.repo_id,
        token=args.token,
        private=args.private,
        dry_run=args.dry_run,
        license=args.license,
    )
    verb = "Would upload" if args.dry_run else "Uploaded"
    print(f"Model card: {Path(args.run_dir) / 'README.md'}")
    print(f"{verb} {len(files)} files to https://huggingface.co/{args.repo_id}:")
    for name, size in files:
        print(f"  {size / 2**20:10.2f} MB  {name}")


if __name__ == "__main__":
    cli.run(main)
