#!/usr/bin/env bash
# The design card's commands on a CUDA GPU, end to end, in one call of the device tool: on the whole
# Davidson training split, bf16, through `accelerate launch`: a teacher, the even student, LoRA on the
# even layers, then the benchmark's training and inference rows. Each run's results.json (no
# weights), the benchmark's JSON, the machine's description and each step's wall time go to $OUT as
# soon as that step ends, so a call cut short still returns what finished.
#
#   here:  bash tools/gpu_prepare.sh && GPU_CHECK_SMOKE=1 bash tools/gpu_check.sh   (tiny, on the CPU)
#   there: run(command="bash tools/gpu_check.sh", carry=[".gpu"], timeout_s=590)
#
# The teacher starts from bert-base-sized random weights (config from .gpu/base): this measures speed
# and what the runs record on CUDA, not quality. GPU_CHECK_SMOKE=1 shrinks the model and the data.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-outputs/gpu-check}
runs=${GPU_CHECK_RUNS:-/tmp/gpu-check}
smoke=${GPU_CHECK_SMOKE:-}
mkdir -p "$out" "$runs"
[[ -d .gpu/whl ]] || { echo "gpu_check: no .gpu/ here; run tools/gpu_prepare.sh first" >&2; exit 2; }

# The tested library versions, ahead of the image's own.
# shellcheck disable=SC2046
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --find-links .gpu/whl --target "$runs/site" $(cat .gpu/pins.txt)
export PYTHONPATH=$runs/site HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
  lscpu | grep -E '^(Model name|CPU\(s\)):' || true
  python3 -c "import sys, torch, transformers, peft, datasets, accelerate
print('python', sys.version.split()[0], '| torch', torch.__version__, '| transformers', transformers.__version__,
      '| peft', peft.__version__, '| datasets', datasets.__version__, '| accelerate', accelerate.__version__)
print('CUDA:', torch.cuda.get_device_name() if torch.cuda.is_available() else 'none')"
} | tee "$out/environment.txt"

python3 - "$runs/base" "$smoke" <<'PY'
import sys
import torch
from transformers import AutoConfig, AutoModel, AutoTokenizer
dest, smoke = sys.argv[1], sys.argv[2]
config = AutoConfig.from_pretrained(".gpu/base")
if smoke:  # 12 layers still, so that --layers even has its 6
    config.update({"hidden_size": 64, "num_attention_heads": 2, "intermediate_size": 128})
torch.manual_seed(0)
AutoModel.from_config(config).save_pretrained(dest)
AutoTokenizer.from_pretrained(".gpu/base").save_pretrained(dest)
PY

flags=(--dataset .gpu/labeled_data.csv --max_length 64 --per_device_train_batch_size 16
       --per_device_eval_batch_size 64 --num_train_epochs 1 --bf16 --class_weights balanced
       --eval_strategy epoch --save_strategy epoch --report_to none --disable_tqdm true)
bench=(--train_examples 4096)
if [[ -n $smoke ]]; then
  flags+=(--max_train_samples 64 --max_eval_samples 32 --max_test_samples 32)
  bench=(--train_examples 32 --inference_repeats 1)
fi
launch=(python3 -m accelerate.commands.launch --quiet --config_file accelerate_config.yaml)

step() {  # step NAME RUN_DIR COMMAND...: run it, record its wall time, bring back its results.json
  local name=$1 dir=$2 start=$SECONDS
  shift 2
  "$@"
  echo "$name: $((SECONDS - start)) s wall" | tee -a "$out/wall.txt"
  if [[ -n $dir ]]; then install -D -m 644 "$dir/results.json" "$out/runs/$name/results.json"; fi
}
step teacher "$runs/teacher" "${launch[@]}" scripts/train_teacher.py --model_name_or_path "$runs/base" \
  "${flags[@]}" --output_dir "$runs/teacher"
step student-even "$runs/student-even" "${launch[@]}" scripts/distill.py --teacher "$runs/teacher" \
  --layers even "${flags[@]}" --output_dir "$runs/student-even"
# LoRA at its own rate: 2e-3 won the 4,000-tweet search on validation (docs/results).
step lora-even "$runs/lora-even" "${launch[@]}" scripts/lora.py --teacher "$runs/teacher" --layers even \
  "${flags[@]}" --learning_rate 2e-3 --output_dir "$runs/lora-even"
step benchmark "" python3 scripts/benchmark.py --teacher "$runs/teacher" --dataset .gpu/labeled_data.csv \
  "${bench[@]}" --output "$out/benchmark.json"
