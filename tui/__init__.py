"""The Textual operator console (`s3ipfs tui`); talks to the daemon only through the admin API client."""
