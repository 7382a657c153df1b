//! The runner's holds on the workspace: waiting for the run lease (one
//! runner acts per workspace; the others stand by and say so), and the
//! heartbeat that renews it, and the state lock while held, every third of
//! the lease's TTL; the runner's share of the state lock (`state::gate`),
//! held around its commits and let go of while its work waits for AWS.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::{Daemon, RunEvent};
use crate::state::{LockGate, LockInfo, Owner, StateError};

impl Daemon<'_> {
    /// Waits for the lease (one runner per workspace), saying so once per
    /// holder; `None` when stopped while waiting.
    pub(super) async fn take_lease(&self) -> Result<Option<LockInfo>, StateError> {
        let ttl = self.mode.ttl();
        let mut said = None;
        loop {
            self.metrics.look();
            let taken = self.store.lock().expect("store").take_lease(ttl);
            match taken {
                Ok(l) => return Ok(Some(l)),
                Err(StateError::Leased {
                    holder, expires, ..
                }) => {
                    let holding = Some((holder.clone(), expires.clone()));
                    if holding != said {
                        self.report(RunEvent::LeaseWaiting {
                            holder,
                            until: expires,
                        });
                        said = holding;
                    }
                    if self.stopped() {
                        return Ok(None);
                    }
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                }
                // Shared state out of reach for a moment is waited out,
                // as a held lease is: a standby must not exit for it.
                Err(StateError::Remote(crate::state::remote::RemoteError::Failed(why))) => {
                    let holding = Some((
                        format!("unknown: the state is out of reach ({why})"),
                        String::new(),
                    ));
                    if holding != said {
                        self.report(RunEvent::LeaseWaiting {
                            holder: holding.clone().map(|h| h.0).unwrap_or_default(),
                            until: "when the state answers".into(),
                        });
                        said = holding;
                    }
                    if self.stopped() {
                        return Ok(None);
                    }
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Renews the lease, and the state lock while one is held, however long
    /// a run or a drain takes. A renewal that fails (taken over, broken)
    /// raises `lost`, which stops the runner.
    pub(super) fn heartbeat(
        &self,
        lease: &str,
        lock: Arc<Mutex<Option<String>>>,
        lost: Arc<AtomicBool>,
    ) -> tokio::task::JoinHandle<()> {
        let (store, id, stop) = (self.store.clone(), lease.to_string(), self.stop.clone());
        let (clock, on_event) = (self.clock.clone(), self.on_event.clone());
        let metrics = self.metrics.clone();
        let ttl = self.mode.ttl();
        let every = self.mode.lease_ttl / 3;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                // The held lock's slot is kept while renewing: a release
                // (and a new take) waits, so a lock this runner let go of
                // is never renewed and taken for broken.
                let held = lock.lock().expect("held lock");
                let renewed = {
                    let mut s = store.lock().expect("store");
                    s.renew_lease(&id, ttl)
                        .and_then(|()| held.as_ref().map_or(Ok(()), |l| s.renew_lock_for(l, ttl)))
                };
                drop(held);
                if let Err(e) = renewed {
                    // Only the first to notice says so.
                    if !lost.swap(true, Ordering::SeqCst) {
                        let event = RunEvent::LeaseLost(e);
                        metrics.observe(&event);
                        on_event(clock.now(), &event);
                    }
                    stop.store(true, Ordering::SeqCst);
                    return;
                }
            }
        })
    }

    /// The runner's hold on the state lock for the runner of `lease`: the
    /// lock's id lives in `held` (which the heartbeat renews); a run that
    /// waits to take it again says who holds it, once per holder.
    pub(super) fn gate(
        &self,
        lease: &LockInfo,
        held: Arc<Mutex<Option<String>>>,
        lost: Arc<AtomicBool>,
    ) -> LockGate {
        let owner = Owner {
            lease: lease.id.clone(),
            holder: lease.holder.clone(),
        };
        let (clock, on_event) = (self.clock.clone(), self.on_event.clone());
        let on_locked = Arc::new(move |e: &StateError| {
            if let StateError::Locked {
                holder, operation, ..
            } = e
            {
                let event = RunEvent::LockWaiting {
                    holder: holder.clone(),
                    operation: operation.clone(),
                };
                on_event(clock.now(), &event);
            }
        });
        LockGate::new(
            self.store.clone(),
            "run",
            self.mode.ttl(),
            held,
            lost,
            owner,
            on_locked,
        )
    }
}
