#!/usr/bin/env bash
# The GPU checks of issue 18 in one run (at most 8 minutes on one H100/H200), ending with one table:
#   1. training images/s: simclr and samclr, input cpu and gpu, eager and compiled, beside the plain
#      lightly loop, at the paper's settings (ResNet18, 128 px views, batch 256, bf16 autocast)  -> bench/train_step.py
#   2. packing 1, 2, 4 trials as plain concurrent processes (no Ray), each capping its CUDA memory at
#      1/N as a packed trial does: aggregate images/s and peak memory                            -> bench/packing.py
#   3. HQ-SAM vit_h, our batched generator vs the reference loop (random weights)               -> bench/masks.py (its CLI)
#   4. the CUDA-only tests (pytest -m cuda): AMP + grad scaler, channels_last, bf16 masks, the memory cap
# Every step has its own time limit; a step that fails or runs out of time is reported in the table
# (with its log under the results folder) and the others still run.
#
# The GPU machine has torch, torchvision, timm, scikit-image and pyarrow but no network, Ray, MLflow,
# lightly, kornia, pydantic, segment-anything-hq or pytest: the wheels in bench/wheels (~33 MiB, not
# in git) travel with the code and are unpacked there only where missing or older. Fill the folder
# once, on a machine with PyPI:
#     python bench/carried_wheels.py download bench/wheels
# Then, with the `run` tool of the device machine (one call, ~8 minutes; its output tail is the table):
#     run(command="bash bench/gpu_check.sh --out $OUT", carry=["bench/wheels"], timeout_s=600)
# On a CPU, every step small (checks the machinery, the numbers mean nothing). Measured on a 2-core
# machine shared at load ~20, in a Python without Ray, MLflow or the carried packages: 13 min wall
# (3 CPU-min) with a cold torch.compile cache, 7.6 min (1.9 CPU-min) with a warm one:
#     bash bench/gpu_check.sh --device cpu
#
# Options: --device cuda|cpu (default cuda), --out DIR (results: logs, JSON, table.md; default a new
# temporary folder), --python PATH (default: the first of python, python3 on PATH that imports torch).
set -uo pipefail

# the whole script is one function, read by bash before it runs: editing this file meanwhile is safe
main() {

DEVICE=cuda
OUT_DIR=""
PYTHON_BIN=""
for candidate in python python3; do  # the first on PATH that has torch
  if command -v "$candidate" > /dev/null && "$candidate" -c "import torch" 2> /dev/null; then PYTHON_BIN="$(command -v "$candidate")"; break; fi
done
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE="$2"; shift 2 ;;
    --out) OUT_DIR="$2"; shift 2 ;;
    --python) PYTHON_BIN="$2"; shift 2 ;;
    *) echo "gpu_check.sh: unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
case "$DEVICE" in cuda|cpu) ;; *) echo "gpu_check.sh: --device must be cuda or cpu, not $DEVICE" >&2; exit 2 ;; esac
if [ -z "$PYTHON_BIN" ] || ! "$PYTHON_BIN" -c "import torch" 2> /dev/null; then
  echo "gpu_check.sh: no python with torch found (python, python3 on PATH); give one with --python PATH" >&2; exit 2
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT_DIR="${OUT_DIR:-$(mktemp -d -t gpu_check.XXXXXX)}"
RESULTS="$OUT_DIR/gpu_check"
mkdir -p "$RESULTS"
START=$(date +%s)

# carried wheels: unpacked only where this machine lacks them (or has older ones)
local site
site="$(mktemp -d -t gpu_check_site.XXXXXX)"  # outside the results: they may be shipped back
"$PYTHON_BIN" bench/carried_wheels.py install bench/wheels "$site" > "$RESULTS/wheels.log" 2>&1
export PYTHONPATH="$site:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONWARNINGS=ignore
grep -c '^unpacked' "$RESULTS/wheels.log" > /dev/null && sed 's/^/wheels: /' "$RESULTS/wheels.log" | grep unpacked
"$PYTHON_BIN" - > "$RESULTS/preflight.log" 2>&1 <<'EOF'
import importlib, sys
import torch
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, cuda {torch.version.cuda}, "
      f"device {torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu'}")
missing = []
for name in ("torchvision", "timm", "skimage", "pyarrow", "pydantic", "kornia", "lightly", "segment_anything_hq", "pytest",
             "selfsup.training", "masking.hqsam_generator", "orchestrator.trial"):
    try:
        importlib.import_module(name)
    except Exception as err:  # report every missing piece, not only the first
        missing.append(f"{name}: {type(err).__name__}: {err}")
for name in ("ray", "mlflow"):
    print(f"{name}: {'present (not used)' if importlib.util.find_spec(name) else 'absent (not needed)'}")
print("\n".join(f"MISSING {m}" for m in missing) or "imports: all present")
EOF
cat "$RESULTS/preflight.log"
if [ "$DEVICE" = cuda ] && ! "$PYTHON_BIN" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_check.sh: no CUDA device here; use --device cpu for the small CPU run" >&2
  exit 2
fi

NPROC=$(nproc 2>/dev/null || echo 2)
if [ "$DEVICE" = cuda ]; then
  # 8-minute budget: 200 + 80 + 100 + 70 s of steps, plus ~25 s of set-up and the table
  TRAIN=(--device cuda --compile both --scenes 2048 --repeat 8 --epochs 2 --workers $((NPROC > 3 ? NPROC - 2 : 1)) --input-batches 8)
  PACK=(--device cuda --runner processes --input gpu --trials 1,2,4 --scenes 1024 --repeat 8 --epochs 2 --cpus "$NPROC")
  # eager: compiling vit_h's decoder halves takes longer than this step's share; the compiled run is
  # the same command with --compile (README, "Maskers")
  MASKS=(--device cuda --model-type vit_h --images 4 --size 512 --points-per-side 32 --dtype bfloat16 --variants baseline,all)
  LIMITS=(200 80 100 70)
else
  TRAIN=(--device cpu --compile both --compile-rows samclr:gpu --batch 16 --size 32 --scenes 48 --epochs 2 --workers 0 --threads 1 --input-batches 2)
  PACK=(--device cpu --runner processes --input gpu --trials 1,2 --batch 8 --size 32 --width 8 --scenes 32 --epochs 2 --cpus 2 --workers 0)
  MASKS=(--device cpu --model-type vit_tiny --images 1 --size 96 --points-per-side 2 --dtype float32 --prompt-batch 4 --variants baseline,all)
  LIMITS=(600 300 300 300)  # generous: shared 2-core machines run several times slower than idle ones
fi

# step NAME LIMIT_S COMMAND...: runs with a time limit, keeps its log, records its exit code
step() {
  local name="$1" limit="$2"; shift 2
  local t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" > "$RESULTS/$name.log" 2>&1
  local rc=$?
  echo "$rc $(( $(date +%s) - t0 ))" > "$RESULTS/$name.rc"
  echo "step $name: exit $rc in $(( $(date +%s) - t0 )) s (limit $limit s)"
}

step train "${LIMITS[0]}" "$PYTHON_BIN" bench/train_step.py "${TRAIN[@]}" --json "$RESULTS/train.json"
step packing "${LIMITS[1]}" "$PYTHON_BIN" bench/packing.py "${PACK[@]}" --json "$RESULTS/packing.json"
step masks "${LIMITS[2]}" "$PYTHON_BIN" bench/masks.py "${MASKS[@]}"
CUDA_TESTS=$(grep -rl "pytest.mark.cuda" tests --include='test_*.py' | sort | tr '\n' ' ')
# -p no:cacheprovider: the working tree may be read-only there
step tests "${LIMITS[3]}" "$PYTHON_BIN" -m pytest -m cuda -q -p no:cacheprovider $CUDA_TESTS

"$PYTHON_BIN" bench/gpu_table.py "$RESULTS" --seconds $(( $(date +%s) - START )) | tee "$RESULTS/table.md"
}

main "$@"; exit $?  # on one line: bash never reads past it, even if the file changed meanwhile
