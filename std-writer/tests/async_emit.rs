//! `Emitter::emit_async`, `flush_async` and the byte emitter's async emits, on tokio
//! (`current_thread` and `multi_thread`) and on `futures-executor`: a full ring under `Block`
//! makes the task wait, never the thread; `Reject` and `DropOldest` complete at the first
//! poll; a cancelled emit hands its event back or counts it once, and never writes it; a
//! shutdown wakes waiting tasks; a stalled sink does not stop a heartbeat task on the same
//! thread.
//!
//! The sink is a gate: while it is shut, the writer's append waits, so the ring fills and
//! stays full for as long as a test wants.

#[path = "support/gate.rs"]
mod gate;

use gate::{counting_waker, fill, poll_once, Gate, GateSink};
use ringwal::{ByteEmitError, EmitError, Emitter, FlushError, Overflow, Writer};
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// A writer of `u64`s on a gate sink, ring of `capacity`.
fn gated(overflow: Overflow, capacity: usize, gate: &Gate) -> (Writer<u64>, Emitter<u64>) {
    let dir = tempfile::tempdir().unwrap();
    Writer::builder(dir.path())
        .overflow(overflow)
        .capacity(capacity)
        .shutdown_timeout(Duration::from_millis(200))
        .start_with_sink(GateSink {
            next: 0,
            gate: gate.clone(),
        })
        .unwrap()
}

/// Waits until the writer is stuck at the shut gate.
fn wait_stuck(gate: &Gate) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !gate.writer_stuck() {
        assert!(
            std::time::Instant::now() < deadline,
            "the writer never reached the sink"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Events of task `t`: `t << 32 | i`.
async fn emit_all(emitter: Emitter<u64>, task: u64, n: u64) {
    for i in 0..n {
        emitter.emit_async(task << 32 | i).await.unwrap();
    }
}

/// Checks the sink got `tasks * n` events of `emit_all`, each task's in order.
fn check_order(payloads: &[Vec<u8>], tasks: u64, n: u64) {
    let mut next = vec![0u64; tasks as usize];
    for p in payloads {
        let v = u64::from_le_bytes(p[..8].try_into().unwrap());
        let (t, i) = ((v >> 32) as usize, v & 0xffff_ffff);
        assert_eq!(i, next[t], "task {t}'s events out of order");
        next[t] += 1;
    }
    assert!(next.iter().all(|&k| k == n), "events missing: {next:?}");
}

/// Many tasks (`run` spawns them on its executor) emitting through a ring of 4 whose writer is
/// stalled at first: they wait (the ring stays full until `run` opens the gate), then all
/// their events arrive, in order per task, none refused.
fn block_scenario(run: impl FnOnce(Emitter<u64>, &Gate, u64, u64)) {
    let gate = Gate::shut();
    let (writer, emitter) = gated(Overflow::Block(None), 4, &gate);
    let (tasks, n) = (8u64, 300u64);
    run(emitter.clone(), &gate, tasks, n);
    let stats = emitter.stats();
    assert_eq!(stats.rejected, 0);
    let report = writer.shutdown().unwrap();
    assert_eq!(report.persisted, tasks * n);
    check_order(&gate.payloads(), tasks, n);
}

#[test]
fn block_waits_for_space_on_tokio_current_thread() {
    block_scenario(|emitter, gate, tasks, n| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let handles: Vec<_> = (0..tasks)
                .map(|t| tokio::spawn(emit_all(emitter.clone(), t, n)))
                .collect();
            // The tasks run until the ring is full, then wait: the thread is free.
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(handles.iter().all(|h| !h.is_finished()));
            assert!(
                emitter.stats().queued <= 4 + 64,
                "the ring bounds what is queued"
            );
            gate.open();
            for h in handles {
                h.await.unwrap();
            }
            emitter.flush_async().await.unwrap();
        });
    });
}

#[test]
fn block_waits_for_space_on_tokio_multi_thread() {
    block_scenario(|emitter, gate, tasks, n| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let handles: Vec<_> = (0..tasks)
                .map(|t| tokio::spawn(emit_all(emitter.clone(), t, n)))
                .collect();
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(handles.iter().all(|h| !h.is_finished()));
            gate.open();
            for h in handles {
                h.await.unwrap();
            }
            emitter.flush_async().await.unwrap();
        });
    });
}

/// All of `futures` polled on the calling task, until every one is done (a minimal join, so
/// the test needs nothing of `futures-util`).
struct JoinAll(Vec<Option<Pin<Box<dyn Future<Output = ()> + Send>>>>);

impl Future for JoinAll {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut pending = false;
        for slot in self.0.iter_mut() {
            if let Some(f) = slot {
                if f.as_mut().poll(cx).is_ready() {
                    *slot = None;
                } else {
                    pending = true;
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }
}

/// `futures-executor`: its `block_on` on two threads, each driving half the tasks (joined on
/// one task: they share one waker, each in its own node of the list).
#[test]
fn block_waits_for_space_on_futures_executor() {
    block_scenario(|emitter, gate, tasks, n| {
        let threads: Vec<_> = (0..2)
            .map(|half| {
                let emitter = emitter.clone();
                std::thread::spawn(move || {
                    let futures = (0..tasks / 2)
                        .map(|t| {
                            let f: Pin<Box<dyn Future<Output = ()> + Send>> =
                                Box::pin(emit_all(emitter.clone(), half * tasks / 2 + t, n));
                            Some(f)
                        })
                        .collect();
                    futures_executor::block_on(JoinAll(futures));
                    futures_executor::block_on(emitter.flush_async()).unwrap();
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(20));
        assert!(threads.iter().all(|t| !t.is_finished()));
        gate.open();
        for t in threads {
            t.join().unwrap();
        }
    });
}

/// `Reject` and `DropOldest` never wait: with the writer stuck, every poll of a new emit is
/// `Ready` at once — `Full` with the event back under `Reject`, accepted (evicting the oldest)
/// under `DropOldest`.
#[test]
fn reject_and_drop_oldest_complete_at_the_first_poll() {
    for overflow in [Overflow::Reject, Overflow::DropOldest] {
        let gate = Gate::shut();
        let (writer, emitter) = gated(overflow, 4, &gate);
        emitter.emit(0).unwrap();
        wait_stuck(&gate);
        let (count, waker) = counting_waker();
        let mut refused = 0;
        for v in 1..=12u64 {
            let mut emit = pin!(emitter.emit_async(v));
            match (overflow, poll_once(emit.as_mut(), &waker)) {
                (_, Poll::Ready(Ok(()))) => {}
                (Overflow::Reject, Poll::Ready(Err(EmitError::Full(back)))) => {
                    assert_eq!(back, v, "the event comes back");
                    refused += 1;
                }
                (_, other) => panic!("{overflow:?}: {other:?}"),
            }
        }
        assert_eq!(count.wakes(), 0);
        gate.open();
        let report = writer.shutdown().unwrap();
        assert_eq!(report.emitted, report.persisted + report.dropped);
        match overflow {
            Overflow::Reject => assert_eq!((refused, report.rejected), (8, 8)),
            _ => assert_eq!((report.persisted, report.dropped), (5, 8)),
        }
    }
}

/// A waiting emit that is cancelled hands its event back (`cancel`) or drops it (drop), and
/// counts it once as rejected; neither is ever written. A later emit goes in.
#[test]
fn a_cancelled_emit_is_refused_once_and_never_written() {
    let gate = Gate::shut();
    let (writer, emitter) = gated(Overflow::Block(None), 4, &gate);
    let accepted = fill(&emitter, &gate);
    let rejected = emitter.stats().rejected;

    let (count, waker) = counting_waker();
    let mut first = pin!(emitter.emit_async(7));
    assert!(poll_once(first.as_mut(), &waker).is_pending());
    assert!(matches!(first.as_mut().cancel(), Some(EmitError::Full(7))));
    assert_eq!(
        first.as_mut().cancel().map(|e| e.into_inner()),
        None,
        "handed back once"
    );

    {
        let mut second = pin!(emitter.emit_async(8));
        assert!(poll_once(second.as_mut(), &waker).is_pending());
        // Dropped while waiting.
    }
    {
        // Never polled: it never tried, but still counts once (as a `Block` emit that timed out).
        let _third = emitter.emit_async(9);
    }
    assert_eq!(emitter.stats().rejected, rejected + 3);

    // A waiting emit that completes once the writer frees space.
    let mut fourth = pin!(emitter.emit_async(10));
    assert!(poll_once(fourth.as_mut(), &waker).is_pending());
    let wakes = count.wakes();
    gate.open();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while count.wakes() == wakes {
        assert!(std::time::Instant::now() < deadline, "never woken");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(matches!(
        poll_once(fourth.as_mut(), &waker),
        Poll::Ready(Ok(()))
    ));

    let report = writer.shutdown().unwrap();
    assert_eq!(report.persisted, accepted + 1);
    assert_eq!(report.rejected, rejected + 3);
    let written: Vec<u64> = gate
        .payloads()
        .iter()
        .map(|p| u64::from_le_bytes(p[..8].try_into().unwrap()))
        .collect();
    assert!(
        !written.iter().any(|v| [7, 8, 9].contains(v)),
        "a refused event was written"
    );
    assert!(written.contains(&10));
}

/// A runtime's timeout around a waiting emit: it elapses, the event counts as rejected.
#[test]
fn a_timeout_cancels_a_waiting_emit() {
    let gate = Gate::shut();
    let (writer, emitter) = gated(Overflow::Block(None), 4, &gate);
    fill(&emitter, &gate);
    let rejected = emitter.stats().rejected;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let timed_out = rt.block_on(async {
        tokio::time::timeout(Duration::from_millis(20), emitter.emit_async(5)).await
    });
    assert!(timed_out.is_err());
    assert_eq!(emitter.stats().rejected, rejected + 1);
    gate.open();
    let report = writer.shutdown().unwrap();
    assert_eq!(report.emitted, report.persisted + report.dropped);
}

/// A shutdown whose writer is stuck in the sink closes the ring: a task waiting for space is
/// woken and gets its event back as `Closed`.
#[test]
fn shutdown_wakes_a_waiting_task() {
    let gate = Gate::shut();
    let (writer, emitter) = gated(Overflow::Block(None), 4, &gate);
    fill(&emitter, &gate);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let waiting = {
        let emitter = emitter.clone();
        rt.spawn(async move { emitter.emit_async(42).await })
    };
    std::thread::sleep(Duration::from_millis(20));
    assert!(!waiting.is_finished());
    // The writer is stuck in `append`: shutdown gives up at its timeout and closes.
    let stuck = writer.shutdown();
    assert!(stuck.is_err());
    let got = rt.block_on(waiting).unwrap();
    assert!(matches!(got, Err(EmitError::Closed(42))), "{got:?}");
    gate.open();
}

#[test]
fn flush_async_waits_for_the_writer() {
    let gate = Gate::shut();
    let (writer, emitter) = gated(Overflow::Block(None), 16, &gate);
    let (count, waker) = counting_waker();
    let mut emit = pin!(emitter.emit_async(1));
    assert!(matches!(
        poll_once(emit.as_mut(), &waker),
        Poll::Ready(Ok(()))
    ));
    let mut flush = pin!(emitter.flush_async());
    assert!(poll_once(flush.as_mut(), &waker).is_pending());
    std::thread::sleep(Duration::from_millis(10));
    assert!(
        poll_once(flush.as_mut(), &waker).is_pending(),
        "the sink is stalled"
    );
    gate.open();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while count.wakes() == 0 {
        assert!(std::time::Instant::now() < deadline, "never woken");
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut polled = poll_once(flush.as_mut(), &waker);
    while polled.is_pending() {
        // Woken for a publish that did not reach the target yet: wait for the next.
        std::thread::sleep(Duration::from_millis(1));
        assert!(std::time::Instant::now() < deadline, "never done");
        polled = poll_once(flush.as_mut(), &waker);
    }
    assert!(matches!(polled, Poll::Ready(Ok(()))));
    assert_eq!(
        gate.payloads().len(),
        1,
        "written before the flush completed"
    );
    // After shutdown a flush has nothing left to wait for, or reports the closed writer.
    let emitter2 = emitter.clone();
    writer.shutdown().unwrap();
    let after = futures_executor::block_on(emitter2.flush_async());
    assert!(
        matches!(after, Ok(()) | Err(FlushError::Closed)),
        "{after:?}"
    );
}

/// The trial's heartbeat, as a test: a sink stalled for 60 ms under `Block`, emitter tasks
/// and a 1 ms heartbeat task on one `current_thread` runtime. With a blocking `emit` the
/// thread would be parked for the stall and the heartbeat would not run; with `emit_async`
/// the emitters wait as tasks and the heartbeat keeps ticking. Asserted: the emitters were
/// still waiting when the stall ended, and the heartbeat had ticked at least 10 times during
/// it (60 would be on time; no timing is asserted beyond that floor). The worst lateness is
/// printed (`--nocapture`), not asserted.
#[test]
fn a_stalled_sink_does_not_stop_a_heartbeat_task() {
    const STALL: Duration = Duration::from_millis(60);
    let gate = Gate::shut();
    let (writer, emitter) = gated(Overflow::Block(None), 4, &gate);
    let ticks = Arc::new(AtomicUsize::new(0));
    let worst_late_us = Arc::new(AtomicUsize::new(0));
    let emitted = Arc::new(AtomicUsize::new(0));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (tasks, n) = (4u64, 200u64);
    let opener = {
        let (gate, ticks, emitted) = (gate.clone(), ticks.clone(), emitted.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            let ticks_before = ticks.load(Ordering::SeqCst);
            std::thread::sleep(STALL);
            let seen = (
                ticks.load(Ordering::SeqCst) - ticks_before,
                emitted.load(Ordering::SeqCst),
            );
            gate.open();
            seen
        })
    };
    rt.block_on(async {
        let heartbeat = {
            let (ticks, worst) = (ticks.clone(), worst_late_us.clone());
            tokio::spawn(async move {
                let mut next = tokio::time::Instant::now();
                loop {
                    next += Duration::from_millis(1);
                    tokio::time::sleep_until(next).await;
                    let late = tokio::time::Instant::now() - next;
                    worst.fetch_max(late.as_micros() as usize, Ordering::SeqCst);
                    ticks.fetch_add(1, Ordering::SeqCst);
                    // A late tick sets the next one from now (as `MissedTickBehavior::Delay`).
                    next = next.max(tokio::time::Instant::now() - Duration::from_millis(1));
                }
            })
        };
        let emitters: Vec<_> = (0..tasks)
            .map(|t| {
                let (emitter, emitted) = (emitter.clone(), emitted.clone());
                tokio::spawn(async move {
                    for i in 0..n {
                        emitter.emit_async(t << 32 | i).await.unwrap();
                        emitted.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for e in emitters {
            e.await.unwrap();
        }
        heartbeat.abort();
        let _ = heartbeat.await;
    });
    let (ticks_during_stall, emitted_at_open) = opener.join().unwrap();
    println!(
        "heartbeat: {ticks_during_stall} ticks during the {STALL:?} stall, worst lateness \
         {} us; events emitted by then: {emitted_at_open} of {}",
        worst_late_us.load(Ordering::SeqCst),
        tasks * n
    );
    assert!(
        (emitted_at_open as u64) < tasks * n,
        "the emitters did not wait: the stall did not fill the ring"
    );
    assert!(
        ticks_during_stall >= 10,
        "the heartbeat ran {ticks_during_stall} times during a {STALL:?} stall"
    );
    let report = writer.shutdown().unwrap();
    assert_eq!(report.persisted, tasks * n);
}

/// The byte emitter's async emits: `Block` waits (the ring of 256 bytes holds a few records),
/// every record arrives in order; `emit_with_async` writes in place; a cancelled one counts
/// once and is never written; `Reject` completes at once.
#[test]
fn byte_emits_wait_for_space_and_cancel_cleanly() {
    let gate = Gate::shut();
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path())
        .overflow(Overflow::Block(None))
        .capacity(256)
        .shutdown_timeout(Duration::from_millis(200))
        .start_bytes_with_sink(GateSink {
            next: 0,
            gate: gate.clone(),
        })
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let n = 200u32;
    rt.block_on(async {
        let task = {
            let emitter = emitter.clone();
            tokio::spawn(async move {
                for i in 0..n {
                    if i % 2 == 0 {
                        emitter.emit_async(&i.to_le_bytes()).await.unwrap();
                    } else {
                        emitter
                            .emit_with_async(16, |buf| {
                                buf[..4].copy_from_slice(&i.to_le_bytes());
                                4
                            })
                            .await
                            .unwrap();
                    }
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !task.is_finished(),
            "the ring of 256 bytes cannot take 200 records"
        );
        // A second emit waiting beside it, cancelled by a timeout: never written.
        let rejected = emitter.stats().rejected;
        let called = AtomicUsize::new(0);
        let timed_out = tokio::time::timeout(
            Duration::from_millis(5),
            emitter.emit_with_async(64, |buf| {
                called.fetch_add(1, Ordering::SeqCst);
                buf[..4].copy_from_slice(b"nope");
                4
            }),
        )
        .await;
        assert!(timed_out.is_err());
        assert_eq!(
            called.load(Ordering::SeqCst),
            0,
            "the closure of a cancelled emit ran"
        );
        assert_eq!(emitter.stats().rejected, rejected + 1);
        // Too large: refused at the first poll, whatever the policy.
        let too_large = vec![0u8; emitter.max_record_len() + 1];
        assert!(matches!(
            emitter.emit_async(&too_large).await,
            Err(ByteEmitError::TooLarge { .. })
        ));
        gate.open();
        task.await.unwrap();
        emitter.flush_async().await.unwrap();
    });
    let report = writer.shutdown().unwrap();
    assert_eq!(report.persisted, u64::from(n));
    let got: Vec<u32> = gate
        .payloads()
        .iter()
        .map(|p| u32::from_le_bytes(p[..4].try_into().unwrap()))
        .collect();
    assert_eq!(got, (0..n).collect::<Vec<_>>());
}

#[test]
fn byte_emit_async_under_reject_completes_at_once() {
    let gate = Gate::shut();
    let dir = tempfile::tempdir().unwrap();
    let (writer, emitter) = Writer::builder(dir.path())
        .overflow(Overflow::Reject)
        .capacity(256)
        .shutdown_timeout(Duration::from_millis(200))
        .start_bytes_with_sink(GateSink {
            next: 0,
            gate: gate.clone(),
        })
        .unwrap();
    let (_, waker) = counting_waker();
    let mut refused = false;
    for _ in 0..1000 {
        let mut emit = pin!(emitter.emit_async(b"0123456789abcdef"));
        match poll_once(emit.as_mut(), &waker) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(ByteEmitError::Full)) => {
                refused = true;
                break;
            }
            other => panic!("{other:?}"),
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    assert!(refused, "the ring never filled");
    gate.open();
    let report = writer.shutdown().unwrap();
    assert_eq!(report.emitted, report.persisted);
}
