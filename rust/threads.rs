//! The thread pool behind batch work: its size is settable at run time
//! (`NAMELANG_NUM_THREADS` or `set_num_threads`), and it is rebuilt in a
//! forked child, where the parent's worker threads do not exist.

use rayon::{ThreadPool, ThreadPoolBuilder};
use std::sync::{Arc, Mutex};

/// Batches smaller than this run on the calling thread: waking workers costs more.
pub const PARALLEL_THRESHOLD: usize = 2048;

struct Pool {
    pid: u32,
    threads: usize,
    pool: Arc<ThreadPool>,
}

static POOL: Mutex<Option<Pool>> = Mutex::new(None);
static REQUESTED: Mutex<Option<usize>> = Mutex::new(None);

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The most threads batch work may use: 4 per core. Past that, threads only wait on
/// each other (and tens of thousands of them bring a machine near a halt).
pub fn max_threads() -> usize {
    4 * cores()
}

/// `NAMELANG_NUM_THREADS`, capped at `max_threads`, else every core.
fn default_threads() -> usize {
    std::env::var("NAMELANG_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .map_or_else(cores, |n| n.min(max_threads()))
}

/// Number of threads batch work uses.
pub fn num_threads() -> usize {
    let requested = *REQUESTED.lock().unwrap_or_else(|e| e.into_inner());
    requested.unwrap_or_else(default_threads)
}

/// Sets the number of threads; 0 goes back to the default. More than `max_threads` is
/// refused.
pub fn set_num_threads(n: usize) -> crate::error::Result<()> {
    if n > max_threads() {
        return Err(crate::error::Error::InvalidArgument(format!(
            "{n} threads asked for; at most {} (4 per core) are allowed",
            max_threads()
        )));
    }
    *REQUESTED.lock().unwrap_or_else(|e| e.into_inner()) = (n > 0).then_some(n);
    Ok(())
}

/// The pool for the current process and thread count, built on first use.
pub fn pool() -> Arc<ThreadPool> {
    let threads = num_threads();
    let pid = std::process::id();
    let mut guard = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = guard.as_ref() {
        if p.pid == pid && p.threads == threads {
            return p.pool.clone();
        }
        if p.pid != pid {
            // A forked child: the parent's threads are gone; never join them.
            std::mem::forget(guard.take());
        }
    }
    let pool = Arc::new(
        ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("namelang-{i}"))
            .build()
            .expect("failed to start the namelang thread pool"),
    );
    *guard = Some(Pool {
        pid,
        threads,
        pool: pool.clone(),
    });
    pool
}

/// Runs `work` in the pool when the batch is large enough, else here. Batch work
/// uses rayon's parallel iterators only at or above the threshold, so inside `run`
/// they always land in this pool (never rayon's global one).
pub fn run<R: Send>(batch: usize, work: impl FnOnce() -> R + Send) -> R {
    if batch < PARALLEL_THRESHOLD {
        work()
    } else {
        pool().install(work)
    }
}

/// `f` over every item, in order: across the pool when there are enough items to pay
/// for waking it, else on this thread.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync + Send) -> Vec<R> {
    use rayon::prelude::*;
    run(items.len(), || {
        if items.len() >= PARALLEL_THRESHOLD {
            items.par_iter().map(f).collect()
        } else {
            items.iter().map(f).collect()
        }
    })
}

/// `f(i, chunk)` for each `width`-long chunk of `out`, in the pool when `work` (the
/// caller's measure of the job) is large enough, else here.
pub fn for_each_chunk<T: Send>(
    out: &mut [T],
    width: usize,
    work: usize,
    f: impl Fn((usize, &mut [T])) + Sync + Send,
) {
    use rayon::prelude::*;
    run(work, || {
        if work >= PARALLEL_THRESHOLD {
            out.par_chunks_mut(width).enumerate().for_each(f);
        } else {
            out.chunks_mut(width).enumerate().for_each(f);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_threads_resizes_the_pool() {
        set_num_threads(3).unwrap();
        assert_eq!(num_threads(), 3);
        assert_eq!(pool().current_num_threads(), 3);
        assert!(set_num_threads(max_threads() + 1).is_err());
        assert_eq!(num_threads(), 3);
        set_num_threads(0).unwrap();
        assert!(num_threads() >= 1);
    }

    #[test]
    fn map_keeps_order_below_and_above_the_threshold() {
        for n in [3, PARALLEL_THRESHOLD + 5] {
            let items: Vec<usize> = (0..n).collect();
            assert_eq!(
                map(&items, |&i| i * 2),
                (0..n).map(|i| i * 2).collect::<Vec<_>>()
            );
        }
    }
}
