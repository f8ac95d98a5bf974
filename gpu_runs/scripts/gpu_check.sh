#!/bin/bash
# The GPU checks of issue 14 in one call of about 8 minutes on one CUDA machine (H100/H200):
# the CUDA tests (sync-debug mode, CUDA = CPU results, gloo with CUDA tensors, the NCCL
# rank-count error), the exact top-k bandwidth table, the step tables (MLP and ResNet-18) and
# the rest of the torch tests. Run from the repository root; results land in $OUT:
#
#   OUT=/path/to/folder bash gpu_runs/scripts/gpu_check.sh
#
# Every part has its own time limit, so one that hangs or runs long costs only its share;
# each part's exit status and duration are in gpu_check.log. Files written (8 at most):
# gpu_check.log, environment.txt, gpu-tests.xml, bench-topk.json, bench-step.json,
# bench-compile.json, torch-tests.xml.
set -u
OUT=${OUT:?set OUT to the folder for the results}
PY=${PYTHON:-python3}
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1
export TORCH_NCCL_ASYNC_ERROR_HANDLING=1
LOG=$OUT/gpu_check.log
started=$(date +%s)

part() {  # part NAME LIMIT_S COMMAND...: run with a time limit, log status and duration
    local name=$1 limit=$2 begin rc
    shift 2
    echo "=== $name (limit ${limit} s): $*" >>"$LOG"
    begin=$(date +%s)
    timeout --kill-after=10 "$limit" "$@" >>"$LOG" 2>&1
    rc=$?
    echo "=== $name: exit $rc after $(($(date +%s) - begin)) s (total $(($(date +%s) - started)) s)" | tee -a "$LOG"
}

part environment 20 bash -c "nvidia-smi; $PY -c 'import torch, sys; print(sys.version); print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0), torch.cuda.device_count(), \"GPUs\")' | tee $OUT/environment.txt"
# the tests that need CUDA (they skip on CPU): sync-debug mode, CUDA = CPU, multi-GPU errors
part gpu-tests 80 $PY -m pytest -q -p no:cacheprovider --junitxml="$OUT/gpu-tests.xml" \
    tests/torch/test_compressors.py tests/torch/test_select.py tests/torch/test_profile.py \
    tests/torch/distributed/test_group.py -k "cuda or nccl or gpu or select or profile"
part bench-topk 80 $PY -m convcheck.torch.bench --device cuda --repeats 30 --skip oracle,step \
    --out "$OUT/bench-topk.json"
part bench-step 110 $PY -m convcheck.torch.bench --device cuda --repeats 20 --skip oracle,topk \
    --models mlp,resnet18 --out "$OUT/bench-step.json"
part bench-compile 90 $PY -m convcheck.torch.bench --device cuda --repeats 20 --skip oracle,step \
    --sizes 8x10000000 --compile --out "$OUT/bench-compile.json"
part torch-tests 110 $PY -m pytest -q -p no:cacheprovider --junitxml="$OUT/torch-tests.xml" tests/torch
grep -h '"target"\|"measured"\|"met"' "$OUT"/bench-*.json 2>/dev/null | paste - - - | tee -a "$LOG"
echo "=== done after $(($(date +%s) - started)) s" | tee -a "$LOG"
