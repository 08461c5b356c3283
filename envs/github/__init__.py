"""The GitHub edge: webhooks in, comment commands parsed, reports out."""
