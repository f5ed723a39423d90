#!/usr/bin/env bash
# Train the demo model on a lent GPU machine in one call (the prepared face data set and the converted
# perceptual-loss features travel in .devdata/). Copies the checkpoint, the log and the last image grid to $OUT.
# Issue 10's recipe (the data set from `fomm prepare-data --max-frames 100000 --still-motion expressive
# --still-videos 12`, continuing the bundled model, webcam-like degradation and occluders for the keypoint
# detector): INIT=fomm/assets/demo.safetensors WEBCAM_AUG=0.3 OCCLUDERS=0.15 MINUTES=8 bash scripts/device_train.sh
# Also: SHAPE_AUG=P (face-shape warps of whole pairs), SCALES=0.5,0.25,0.125 (a coarse perceptual pyramid),
# ID_SAMPLING=1 (every person equally often), FACE_ANCHOR=W (keypoints tied to the same face parts across people),
# LANDMARK_KP=W (one keypoint on each of the 5 face landmarks), LANDMARK_POINTS=facemesh (7 landmarks: those 5 and
# the inner lips; needs ai-edge-litert and the FaceMesh file on the device: FOMM_FACEMESH_PATH).
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
RUN=$(mktemp -d)
nvidia-smi --query-gpu=name --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -m fomm.train --data .devdata/faces --out "$RUN" --preset demo-256 \
  --features .devdata/hed-vgg16-fp16.safetensors --device cuda --batch-size 32 --workers 12 \
  --amp bf16 --channels-last --num-repeats 50 --max-minutes "${MINUTES:-5}" \
  --webcam-aug "${WEBCAM_AUG:-0}" --occluders "${OCCLUDERS:-0}" --shape-aug "${SHAPE_AUG:-0}" \
  ${SCALES:+--scales "$SCALES"} ${FACE_ANCHOR:+--face-anchor "$FACE_ANCHOR"} ${LANDMARK_KP:+--landmark-keypoints "$LANDMARK_KP"} ${LANDMARK_POINTS:+--landmark-points "$LANDMARK_POINTS"} ${ID_SAMPLING:+--id-sampling} ${INIT:+--init "$INIT"} --lr "${LR:-2e-4}" \
  --log-every 25 --image-every 250 --checkpoint-every 250 --checkpoint-unit step --no-progress 2>&1 | tail -n 40
cp "$RUN/checkpoint.safetensors" "$RUN/log.jsonl" "$RUN/train_config.json" "$OUT/" 2>/dev/null
last=$(ls "$RUN"/images/*.png 2>/dev/null | tail -n 1); [ -n "$last" ] && cp "$last" "$OUT/last-grid.png"
ls -la "$OUT"
