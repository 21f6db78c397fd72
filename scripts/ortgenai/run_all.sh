#!/bin/bash
# Wait for /tmp/ortgenai/QUIET (poll 30 s, at most 45 min), then run every timed benchmark back to back.
cd /tmp/ortgenai
mkdir -p results
LOG=results/run_all.log
echo "wait start $(date -Is) load $(cat /proc/loadavg)" > $LOG
waited=0
while [ ! -e /tmp/ortgenai/QUIET ] && [ $waited -lt 2700 ]; do sleep 30; waited=$((waited+30)); done
if [ -e /tmp/ortgenai/QUIET ]; then echo "QUIET found after ${waited}s at $(date -Is)" >> $LOG; else echo "QUIET NOT found after ${waited}s: measuring on a BUSY machine $(date -Is)" >> $LOG; fi
export HF_HUB_OFFLINE=1 PYTHONDONTWRITEBYTECODE=1
lc() { echo "== llamacpp $1 start $(date -Is) load $(cat /proc/loadavg)" >> $LOG; (cd /work/main && .venv/bin/python /tmp/ortgenai/scripts/llamacpp_bench.py $1 /tmp/ortgenai/results/llamacpp_$1$2.json 2>&1 | grep -v "Warn\|warn" >> /tmp/ortgenai/$LOG); }
og() { echo "== ort $1 $2 $3 start $(date -Is) load $(cat /proc/loadavg)" >> $LOG; venv/bin/python scripts/ort_bench.py models/$1 $2 $3 results/ort_$1_$2_$3.json 2>&1 | grep -v "W:onnx\|Warn\|warn" >> $LOG; }
lc grammar _1
og int4 guided fresh
og int4 free fresh
og int4 guided rewind
og int8 guided fresh
og int8 guided rewind
og fp32 guided fresh
og fp32 guided rewind
lc free
lc grammar _2
echo "== lora start $(date -Is) load $(cat /proc/loadavg)" >> $LOG
venv/bin/python scripts/lora_test.py models/int4-lora-all-swap models/int4-lora-all-fp32ab 2>&1 | grep -v "W:onnx\|Warn\|warn" > results/lora_test.log
echo "done $(date -Is) load $(cat /proc/loadavg)" >> $LOG
