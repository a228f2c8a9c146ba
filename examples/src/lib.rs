//! Runnable examples of mudar live in `examples/`; each file's header says
//! what it shows and how to run it.
