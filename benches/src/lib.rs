//! Benchmarks for annal.
