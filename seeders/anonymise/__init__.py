"""Anonymised copies: rules applied on the source, and the leak check."""
