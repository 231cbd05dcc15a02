//! The CPU thread count candle's kernels use, fixed once per process.
//!
//! candle asks for its thread count on every CPU matmul, and unless `RAYON_NUM_THREADS` is
//! set it answers by reading and parsing `/proc/cpuinfo` — about 50 µs each time, hundreds of
//! times per decode step (a third of a 16-sequence GPT-2-small step on 2 cores; see
//! docs/benchmarks.md). Setting the variable makes the answer an environment lookup.

/// Sets `RAYON_NUM_THREADS` to the number of CPUs this process may use, unless it is
/// already set (an operator's choice wins). Returns the value in force.
///
/// Call it at the very start of `main`, before any other thread exists: changing the
/// environment while another thread reads it is a data race in the C library.
pub fn pin_cpu_threads() -> String {
    const VAR: &str = "RAYON_NUM_THREADS";
    if let Ok(value) = std::env::var(VAR) {
        return value;
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let value = threads.to_string();
    std::env::set_var(VAR, &value);
    value
}
