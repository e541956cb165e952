"""Cross-cutting concerns: errors, logging, security."""
