"""Configuration: the service's settings and the repositories' spec files."""
