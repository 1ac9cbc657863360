//! A bare-metal sketch of ringwal on a microcontroller (built in CI for
//! `thumbv7em-none-eabihf`, Cortex-M4F): a timer interrupt handler samples a sensor and pushes
//! the reading into a `static` ring; the main loop drains the ring and writes CRC-framed
//! records (the log format, `ringwal_core::format`) to a byte sink — here a UART data register.
//! The host reads the captured bytes with `ringwal cat`, `ringwal verify` or `ringwal::Reader`
//! (save them as `00000000000000000000.rwl` in a directory).
//!
//! What is ISR-safe, and why:
//! - `Ring::try_push` in the interrupt handler: lock-free, no allocation, never waits for
//!   anything. Its only loop is a CAS retry against *other producers* that moved the tail
//!   meanwhile, which finishes; it never waits for a slot's publication. A full ring returns
//!   the value at once (counted here as refused, and the log says so).
//! - Not `force_push` in a handler: to evict it may wait for the consumer (or another
//!   producer) to finish with the oldest slot, and that may be the very code the handler
//!   interrupted, which cannot run until the handler returns.
//! - The main loop drains with `Consumer::drain`, which never waits: a position the handler
//!   claimed but had not published when it was itself interrupted is left for the next pass.
//!   (`Consumer::pop`, which waits out such a position, is for consumers that cannot preempt
//!   the producer.)
//!
//! On chips without compare-and-swap (Cortex-M0/M0+, `thumbv6m-none-eabi`; RV32IMC) the
//! ring's atomics come from portable-atomic. Either enable `ringwal-core`'s `critical-section`
//! feature and link a `critical-section` implementation (from your HAL or runtime crate), or,
//! on a single-core chip, enable its `portable-atomic` feature and build with
//! `--cfg portable_atomic_unsafe_assume_single_core`, as this example does with its
//! `single-core` feature (CI builds it so for `thumbv6m-none-eabi`):
//!
//! ```text
//! RUSTFLAGS="--cfg portable_atomic_unsafe_assume_single_core" cargo build --release \
//!     --target thumbv6m-none-eabi --features single-core
//! ```
//!
//! (`portable-atomic` alone, without one of the two, does not build there.) The example's own
//! counters need no read-modify-write: each has one writer, the handler, which does not
//! preempt itself, so a load and a store do (`fetch_add` does not exist on such chips).
#![no_std]
#![no_main]

use core::convert::Infallible;
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicU32, Ordering};
#[cfg(not(feature = "ring-only"))]
use ringwal_core::format::Framer;
use ringwal_core::Ring;

/// One sensor reading.
#[derive(Clone, Copy)]
struct Reading {
    tick: u32,
    adc: u16,
}

/// The ring the interrupt handler writes: 64 readings, in `.bss` (all zeros), no allocator.
static READINGS: Ring<Reading, 64> = Ring::new();
/// Readings the handler could not queue (ring full): the log records them as refused.
static REFUSED: AtomicU32 = AtomicU32::new(0);
static TICKS: AtomicU32 = AtomicU32::new(0);

/// A fake ADC data register (a real firmware reads the peripheral).
const ADC_DR: *const u16 = 0x4001_204C as *const u16;
/// A fake UART data register.
const UART_DR: *mut u8 = 0x4000_4404 as *mut u8;

/// The timer interrupt handler.
#[no_mangle]
pub extern "C" fn TIM2() {
    // Relaxed: a counter only this handler writes (a load and a store, no read-modify-write:
    // the handler does not preempt itself, and chips without CAS have no `fetch_add`).
    let tick = TICKS.load(Ordering::Relaxed);
    TICKS.store(tick.wrapping_add(1), Ordering::Relaxed);
    // SAFETY: a memory-mapped register, aligned and always readable on the target.
    let adc = unsafe { core::ptr::read_volatile(ADC_DR) };
    if READINGS.try_push(Reading { tick, adc }).is_err() {
        // Relaxed: read by the main loop as a count; no other memory depends on it. Only this
        // handler writes it, so a load and a store (see `TICKS`).
        let refused = REFUSED.load(Ordering::Relaxed);
        REFUSED.store(refused.wrapping_add(1), Ordering::Relaxed);
    }
}

fn uart_write(bytes: &[u8]) -> Result<(), Infallible> {
    for &b in bytes {
        // SAFETY: a memory-mapped register, always writable on the target (a real driver
        // waits for the transmit-empty flag first).
        unsafe { core::ptr::write_volatile(UART_DR, b) };
    }
    Ok(())
}

fn encode(r: &Reading, out: &mut [u8]) -> Option<usize> {
    let bytes = out.get_mut(..6)?;
    bytes[..4].copy_from_slice(&r.tick.to_le_bytes());
    bytes[4..].copy_from_slice(&r.adc.to_le_bytes());
    Some(6)
}

/// The reset handler: the main loop.
#[no_mangle]
pub extern "C" fn _start() -> ! {
    let consumer = READINGS
        .consumer()
        .expect("the main loop is the only consumer");
    #[cfg(feature = "ring-only")]
    raw_loop(consumer);
    #[cfg(not(feature = "ring-only"))]
    framed_loop(consumer);
}

/// The main loop: drain the ring, write CRC-framed records (and how many readings were
/// refused, where it happened) to the UART.
#[cfg(not(feature = "ring-only"))]
fn framed_loop(mut consumer: ringwal_core::Consumer<'static, Reading, 64>) -> ! {
    let mut framer = Framer::new(0);
    let mut sink = uart_write;
    let mut buf = [0u8; 16];
    let mut refused_seen = 0;
    loop {
        // Relaxed: see `REFUSED`.
        let refused = REFUSED.load(Ordering::Relaxed);
        framer.note_lost(0, u64::from(refused.wrapping_sub(refused_seen)));
        refused_seen = refused;
        let Ok(_) = framer.write_all(consumer.drain(), &mut buf, encode, &mut sink);
        // A real firmware sleeps until the next interrupt here (`wfi`).
        core::hint::spin_loop();
    }
}

/// Feature `ring-only`, for the size figure of the ring alone: raw readings, no framing.
#[cfg(feature = "ring-only")]
fn raw_loop(mut consumer: ringwal_core::Consumer<'static, Reading, 64>) -> ! {
    let mut buf = [0u8; 6];
    loop {
        for r in consumer.drain() {
            if let Some(n) = encode(&r, &mut buf) {
                let Ok(()) = uart_write(&buf[..n]);
            }
        }
        core::hint::spin_loop();
    }
}

/// The vector table's interrupt entries, so the linker keeps the handler (a real firmware
/// gets this from its runtime crate, e.g. cortex-m-rt).
#[used]
#[no_mangle]
static INTERRUPTS: [extern "C" fn(); 1] = [TIM2];

#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    loop {
        core::hint::spin_loop();
    }
}
