//! A thread with its own tokio runtime that runs the SDK's futures for
//! synchronous callers.
//!
//! The callers are themselves on tokio worker threads, where `block_on`
//! panics; a plain thread of our own may block on its runtime, and the
//! caller blocks on a channel, which tokio tolerates.

use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc;
use std::thread::JoinHandle;

use lifeboat_engine::state::remote::RemoteError;

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

pub(super) struct Worker {
    /// `None` only while dropping: closing it ends the thread's loop.
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    pub(super) fn start() -> Result<Worker, RemoteError> {
        let failed = |e: std::io::Error| {
            RemoteError::Failed(format!("cannot start the DynamoDB worker thread: {e}"))
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(failed)?;
        let (jobs, queue) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("lifeboat-dynamodb".to_owned())
            .spawn(move || {
                // One request at a time: the port is called under a mutex
                // anyway, and order is what a log needs.
                while let Ok(job) = queue.recv() {
                    runtime.block_on(job);
                }
            })
            .map_err(failed)?;
        Ok(Worker {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Runs `fut` on the worker and waits for it; `None` when the worker is
    /// gone (a request before panicked).
    pub(super) fn run<T, F>(&self, fut: F) -> Option<T>
    where
        T: Send + 'static,
        F: Future<Output = T> + Send + 'static,
    {
        let (answer, reply) = mpsc::sync_channel(1);
        let job: Job = Box::pin(async move {
            let _ = answer.send(fut.await);
        });
        self.jobs.as_ref()?.send(job).ok()?;
        reply.recv().ok()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Closing the queue ends the loop once the request in flight (if
        // any) is done; joining makes sure no request outlives the remote.
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_requests_and_ends_its_thread_when_dropped() {
        let worker = Worker::start().unwrap();
        assert_eq!(worker.run(async { 6 * 7 }), Some(42));
        // Inside another runtime, as the engine calls it.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let got = rt.block_on(async {
            worker.run(async {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                "slept"
            })
        });
        assert_eq!(got, Some("slept"));
        let thread = worker.thread.as_ref().unwrap().thread().clone();
        assert_eq!(thread.name(), Some("lifeboat-dynamodb"));
        drop(worker);
    }

    #[test]
    fn a_panicking_request_answers_none_and_later_ones_too() {
        let worker = Worker::start().unwrap();
        assert_eq!(worker.run(async { panic!("boom") }), None::<()>);
        assert_eq!(worker.run(async { 1 }), None);
    }
}
