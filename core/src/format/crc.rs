//! CRC32C (Castagnoli, reflected polynomial `0x82F63B78`), the checksum of every header and
//! frame: table-driven slice-by-8 in software everywhere (8 KiB of tables; with the
//! `crc-small` feature, one byte at a time from a 1 KiB table, for flash-constrained
//! firmware), and the SSE4.2 `crc32` instruction on x86_64 when the CPU has it (detected once
//! at run time with `cpuid`, no `std` needed).
//!
//! ```
//! use ringwal_core::format::{crc32c, crc32c_append};
//! assert_eq!(crc32c(b"123456789"), 0xE306_9283);
//! assert_eq!(crc32c_append(crc32c(b"1234"), b"56789"), crc32c(b"123456789"));
//! ```

/// The reflected Castagnoli polynomial.
const POLY: u32 = 0x82F6_3B78;

/// How many slice-by-N tables: 8, or 1 with `crc-small`.
const SLICES: usize = if cfg!(feature = "crc-small") { 1 } else { 8 };

/// `TABLES[k][b]`: the CRC contribution of byte `b` followed by `k` zero bytes.
static TABLES: [[u32; 256]; SLICES] = make_tables();

const fn make_tables() -> [[u32; 256]; SLICES] {
    let mut t = [[0u32; 256]; SLICES];
    let mut b = 0;
    while b < 256 {
        let mut crc = b as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        t[0][b] = crc;
        b += 1;
    }
    let mut k = 1;
    while k < SLICES {
        let mut b = 0;
        while b < 256 {
            let prev = t[k - 1][b];
            t[k][b] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            b += 1;
        }
        k += 1;
    }
    t
}

/// The CRC32C of `data`.
#[inline]
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c_append(0, data)
}

/// Extends `crc` (a finished CRC32C of some prefix) over `data`: the CRC32C of the prefix
/// followed by `data`.
#[inline]
pub fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    {
        if hw::available() {
            // SAFETY: `available()` confirmed through cpuid that this CPU implements SSE4.2,
            // the only target feature `hw::update` enables.
            return !unsafe { hw::update(!crc, data) };
        }
    }
    !software(!crc, data)
}

/// Byte at a time over the pre-inverted state `crc`. Also the reference the hardware path is
/// tested against.
#[cfg(feature = "crc-small")]
pub(crate) fn software(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = (crc >> 8) ^ TABLES[0][((crc ^ u32::from(b)) & 0xff) as usize];
    }
    crc
}

/// Slice-by-8 over the pre-inverted state `crc`. Also the reference the hardware path is
/// tested against.
#[cfg(not(feature = "crc-small"))]
pub(crate) fn software(mut crc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let lo = crc ^ u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        crc = TABLES[7][(lo & 0xff) as usize]
            ^ TABLES[6][((lo >> 8) & 0xff) as usize]
            ^ TABLES[5][((lo >> 16) & 0xff) as usize]
            ^ TABLES[4][(lo >> 24) as usize]
            ^ TABLES[3][c[4] as usize]
            ^ TABLES[2][c[5] as usize]
            ^ TABLES[1][c[6] as usize]
            ^ TABLES[0][c[7] as usize];
    }
    for &b in chunks.remainder() {
        crc = (crc >> 8) ^ TABLES[0][((crc ^ u32::from(b)) & 0xff) as usize];
    }
    crc
}

#[cfg(all(target_arch = "x86_64", not(miri)))]
pub(crate) mod hw {
    use core::arch::x86_64::{__cpuid, _mm_crc32_u64, _mm_crc32_u8};
    use core::sync::atomic::{AtomicU8, Ordering};

    const UNKNOWN: u8 = 0;
    const YES: u8 = 1;
    const NO: u8 = 2;
    /// A cache of the cpuid answer. Relaxed suffices: the value is a pure function of the CPU,
    /// so a thread that reads UNKNOWN just asks cpuid itself; no other memory depends on it.
    static SSE42: AtomicU8 = AtomicU8::new(UNKNOWN);

    /// Whether the CPU has SSE4.2 (and so the `crc32` instruction).
    #[inline]
    pub(crate) fn available() -> bool {
        if cfg!(target_feature = "sse4.2") {
            return true;
        }
        match SSE42.load(Ordering::Relaxed) {
            YES => true,
            NO => false,
            _ => {
                // cpuid leaf 1 exists on every x86_64 CPU; ECX bit 20 is SSE4.2.
                #[allow(unused_unsafe)]
                // SAFETY: `cpuid` is always available on x86_64 and has no side effects.
                let ecx = unsafe { __cpuid(1) }.ecx;
                let yes = ecx & (1 << 20) != 0;
                SSE42.store(if yes { YES } else { NO }, Ordering::Relaxed);
                yes
            }
        }
    }

    /// The `crc32` instruction over `data`, on the pre-inverted state `crc`.
    ///
    /// # Safety
    /// The CPU must support SSE4.2 ([`available`]).
    #[target_feature(enable = "sse4.2")]
    pub(crate) unsafe fn update(crc: u32, data: &[u8]) -> u32 {
        let mut state = u64::from(crc);
        let mut chunks = data.chunks_exact(8);
        for c in &mut chunks {
            let word = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            state = _mm_crc32_u64(state, word);
        }
        let mut crc = state as u32;
        for &b in chunks.remainder() {
            crc = _mm_crc32_u8(crc, b);
        }
        crc
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(crc32c(b""), 0);
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        // RFC 3720 (iSCSI) B.4: 32 bytes of zeros, of 0xff, ascending and descending.
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62A8_AB43);
        let up: [u8; 32] = core::array::from_fn(|i| i as u8);
        assert_eq!(crc32c(&up), 0x46DD_794E);
        let down: [u8; 32] = core::array::from_fn(|i| 31 - i as u8);
        assert_eq!(crc32c(&down), 0x113F_DB5C);
    }

    #[test]
    fn software_agrees_with_bitwise_definition() {
        fn bitwise(data: &[u8]) -> u32 {
            let mut crc = !0u32;
            for &b in data {
                crc ^= u32::from(b);
                for _ in 0..8 {
                    crc = if crc & 1 != 0 {
                        (crc >> 1) ^ POLY
                    } else {
                        crc >> 1
                    };
                }
            }
            !crc
        }
        let data: [u8; 300] = core::array::from_fn(|i| (i * 7 + 3) as u8);
        for len in 0..data.len() {
            assert_eq!(
                !software(!0, &data[..len]),
                bitwise(&data[..len]),
                "len {len}"
            );
        }
    }

    #[cfg(all(target_arch = "x86_64", not(miri)))]
    #[test]
    fn hardware_agrees_with_software() {
        if !hw::available() {
            // Not a skip of the check that matters: `crc32c` then *is* `software`, which the
            // other tests check. Say so loudly anyway.
            std::eprintln!("no SSE4.2 on this CPU: the hardware CRC path is unused");
            return;
        }
        let data: [u8; 300] = core::array::from_fn(|i| (i * 31 + 11) as u8);
        for start in 0..8 {
            for len in 0..data.len() - start {
                let d = &data[start..start + len];
                // SAFETY: `hw::available()` returned true above.
                assert_eq!(unsafe { hw::update(!0, d) }, software(!0, d));
            }
        }
    }
}
