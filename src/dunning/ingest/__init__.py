"""Reading uploads: the formats, the CSV reader, and the ingest service that records them."""
