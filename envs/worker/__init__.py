"""The worker: claims jobs and runs each kind's handler."""
