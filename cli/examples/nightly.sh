#!/bin/sh
# A night of one model, for cron or a systemd timer (README, "Nightly batches"):
#   1. yesterday's ground truth in: labels-<yesterday>.csv (id,label or id,value), joined to the
#      rows that were submitted with those ids, whichever night's job they were in;
#   2. today's rows scored: rows-<today>.csv in, results-<today>.csv out (a retried night answers
#      the job already made: same idempotency key);
#   3. how the model did over the last week, realised and estimated, on stdout.
# Environment: ONNX_BATCH_URL, ONNX_BATCH_API_KEY (as for the CLI), DATA (default /data), MODEL
# (default iris); ONNX_BATCH (default `npx onnx-batch`); TODAY and YESTERDAY (default from `date`).
set -eu
DATA=${DATA:-/data}
MODEL=${MODEL:-iris}
ONNX_BATCH=${ONNX_BATCH:-npx onnx-batch}
TODAY=${TODAY:-$(date +%F)}
YESTERDAY=${YESTERDAY:-$(date -d "$TODAY - 1 day" +%F)}

labels="$DATA/labels/labels-$YESTERDAY.csv"
if [ -f "$labels" ]; then
  $ONNX_BATCH labels "$labels" > "$DATA/labels/labels-$YESTERDAY.applied.json"
else
  echo "no labels for $YESTERDAY ($labels)" >&2
fi

$ONNX_BATCH submit --model "$MODEL" --input "$DATA/in/rows-$TODAY.csv" --wait \
  --out "$DATA/out/results-$TODAY.csv" --idempotency-key "$MODEL-$TODAY"

$ONNX_BATCH quality "$MODEL" --window 7d
