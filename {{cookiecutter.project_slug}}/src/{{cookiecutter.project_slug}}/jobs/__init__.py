"""Background generation jobs: submit, get an id, poll for the result."""
