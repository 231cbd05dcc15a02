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

/// Runs `work` on one of rayon's worker threads and returns its result.
///
/// The CPU kernels split every matmul, attention and element-wise op over rayon's pool.
/// Called from a thread outside the pool, each of those few hundred parallel loops per
/// step is handed to the pool while the caller sleeps, a thread wake-up each way; called
/// from a worker, the worker keeps part of the loop and the others steal the rest. That
/// took about 3 ms off the best 16-token GPT-2-small prefill on 2 cores, and a
/// `[16, 768]·[16, 768]ᵀ` product from 37 µs to 6 µs (docs/benchmarks.md). Off the CPU it
/// costs one hand-off per call.
pub fn on_cpu_pool<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| work())
}
