#!/usr/bin/env bash
# Stands in for a scheduler's submit command (sbatch, qsub): runs the job script Snakemake hands over
# in the background and prints a job id. Snakemake learns the outcome from the job's marker files.
set -euo pipefail
jobscript="${*: -1}"
nohup bash "$jobscript" >"$jobscript.log" 2>&1 &
echo "$!"
