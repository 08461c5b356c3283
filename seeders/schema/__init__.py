"""What a database holds: its catalogue read into a model, and how tables relate."""
