"""``previewctl``: everything the service does, by hand or from CI."""
