"""Background generation jobs: submit, get an id, poll for the result (seed S3.3, fixed)."""
