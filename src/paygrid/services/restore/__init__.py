"""``paygrid restore`` (issue 16 §5): the write fence every serving process obeys, the
restore itself, and the re-sync with the providers that closes the gap since the backup."""
