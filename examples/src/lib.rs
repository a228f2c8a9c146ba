//! Runnable examples live in `examples/`; see each file header.
