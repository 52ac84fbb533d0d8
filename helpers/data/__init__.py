"""The data: JSONL in and out, the providers' format rules, checking a file before it is uploaded,
its tokens and what a job on it will bill."""
